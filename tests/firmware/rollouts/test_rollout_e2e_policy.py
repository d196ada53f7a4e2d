"""Issue 13's rollout policies end to end with real parts: Mosquitto, the bridge, a Celery worker
running the rollouts tick, and simulated devices speaking the AWS Jobs protocol over MQTT.

Time is moved on the worker, not slept through: `rollouts_tick.delay(at=…)` makes one tick read
a later time as now (firmware.tasks.rollouts_tick), so soaks, the start and finish deadlines, the
confirmation deadline (FLEETPORTAL_FIRMWARE_CONFIRM_MINUTES, 30 in the worker) and the health
window pass in seconds. Between jumps the worker ticks at real time, which is when the tests
assert what must *not* happen yet."""

import pytest

from firmware.models import FirmwareVersion, JobExecution
from firmware.rollouts.models import RolloutDevice, RolloutEvent
from tests.conftest import make_user, token_client
from tests.firmware.helpers import make_version
from tests.firmware.rollouts.e2e_helpers import (
    API,
    Rejected,
    SimulatedDevice,
    every_message_is_seen,  # noqa: F401  (an autouse fixture)
    status_of,
    tick_for,
    ticking,
    wave_status,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
CONFIRM_MINUTES = 30  # the worker's settings.FIRMWARE_CONFIRM_MINUTES (the default)


@pytest.fixture
def operator():
    return token_client(make_user("otto", "Fleet operator"))


@pytest.fixture
def fleet(broker, device_client, celery_worker, bridge):
    """fleet(prefix, n) -> n simulated devices on 1.0.0 (2.0.0 exists to roll out)."""
    make_version("2.0.0")

    def make(prefix: str, n: int) -> list[SimulatedDevice]:
        return [SimulatedDevice(broker, device_client, f"{prefix}-{i}") for i in range(n)]

    return make


REST = {"selector": "percent", "percent": 100}  # the last wave: every device left


def count(n: int) -> dict:
    return {"selector": "count", "count": n}


def create_and_start(operator, rollout_id: str, devices, waves, **extra) -> None:
    body = {
        "rollout_id": rollout_id,
        "firmware": str(FirmwareVersion.objects.get(version="2.0.0").pk),
        "targets": {"devices": [d.device_id for d in devices]},
        "waves": waves,
        **extra,
    }
    created = operator.post(API, body, format="json")
    assert created.status_code == 201, created.json()
    started = operator.post(f"{API}{rollout_id}/start/", {}, format="json")
    assert started.json()["status"] == "running", started.json()


def taken_by(devices, timeout: float = 20.0) -> list[SimulatedDevice]:
    """Tick at real time until `devices` (all of them) are notified of a job."""
    waiting = list(devices)

    def all_notified() -> bool:
        for device in list(waiting):
            if device.notified(0.05):
                waiting.remove(device)
        return not waiting

    ticking(all_notified, timeout=timeout)
    return list(devices)


def wave_of(rollout_id: str, number: int) -> list[str]:
    return list(
        RolloutDevice.objects.filter(rollout__rollout_id=rollout_id, wave__number=number)
        .order_by("position")
        .values_list("device__device_id", flat=True)
    )


def in_wave(devices, rollout_id: str, number: int) -> list[SimulatedDevice]:
    ids = wave_of(rollout_id, number)
    return sorted((d for d in devices if d.device_id in ids), key=lambda d: ids.index(d.device_id))


def detail(operator, rollout_id: str) -> dict:
    return operator.get(f"{API}{rollout_id}/").json()


def failing(operator, rollout_id: str) -> dict[str, tuple[str, str]]:
    """device id -> (failure, reason) of the failed devices, as the device list shows them."""
    rows = operator.get(f"{API}{rollout_id}/devices/", {"outcome": "failed"}).json()["results"]
    return {row["device_id"]: (row["failure"], row["reason"]) for row in rows}


# --- a. soaks and automatic gates --------------------------------------------------------------


def test_three_waves_complete_each_next_wave_waiting_out_the_soak(fleet, operator):
    devices = fleet("soak", 4)
    waves = [
        {**count(1), "soak_minutes": 30},
        {**count(1), "soak_minutes": 60},
        {**REST, "soak_minutes": 10},
    ]
    create_and_start(operator, "soaks", devices, waves)
    updated: set[str] = set()
    for number, soak in ((1, 30), (2, 60), (3, 10)):
        current = in_wave(devices, "soaks", number)
        for device in taken_by(current):
            device.update("2.0.0")
        updated.update(d.device_id for d in current)
        ticking(lambda n=number: wave_status("soaks", n) == "soaking")
        tick_for(1.5)  # at real time the soak runs: the wave's devices stay being verified
        assert wave_status("soaks", number) == "soaking"
        outcomes = detail(operator, "soaks")["waves"][number - 1]["outcomes"]
        assert outcomes["reported"] == len(current)
        later_waves = [d for d in devices if d.device_id not in updated]
        assert all(d.notified(0.1) is None for d in later_waves), "next wave started in the soak"
        # Past the soak: the reported devices are verified, the automatic gate promotes.
        ticking(lambda n=number: wave_status("soaks", n) == "passed", at_minutes=soak + 1)

    ticking(lambda: status_of("soaks") == "completed")
    shown = detail(operator, "soaks")
    assert [w["outcomes"]["updated"] for w in shown["waves"]] == [1, 1, 2]
    assert [w["status"] for w in shown["waves"]] == ["passed"] * 3
    passed = RolloutEvent.objects.filter(rollout__rollout_id="soaks", kind="wave_passed")
    # (by wave: the events' times are the jumped clocks', not in wave order)
    assert list(passed.order_by("wave_number").values_list("wave_number", "actor")) == [
        (n, "system:rollouts") for n in (1, 2, 3)
    ]


# --- b. 30 % of wave 2 fail: the threshold's action ----------------------------------------------


@pytest.fixture
def wave_two_failing(fleet, operator):
    """run(action): a canary wave of one passes, then in a wave of 10 four update, one starts
    and holds (in flight), two stay queued and three (30 % of the wave) report FAILED; the
    third failure crosses the threshold (30 % of the finished, judged once 7 have finished).
    Returns the in-flight device, its job id and the queued devices."""

    def run(action: str):
        devices = fleet(f"half-{action.replace('_', '')}", 11)
        policy = {"threshold_percent": 30, "min_finished": 7, "action": action}
        create_and_start(operator, "thirty", devices, [count(1), REST], failure_policy=policy)
        (canary,) = taken_by(in_wave(devices, "thirty", 1))
        canary.update("2.0.0")
        second = taken_by(in_wave(devices, "thirty", 2))
        updating, holder, queued, failing_ = second[:4], second[4], second[5:7], second[7:]
        for device in updating:
            device.update("2.0.0")
        ticking(lambda: _outcome_count("thirty", 2, "updated") == 4)
        holding = holder.start()
        for device in failing_[:2]:
            device.report(device.start(), "FAILED", statusDetails={"reason": "flash write"})
        tick_for(1.0)
        assert status_of("thirty") == "running"  # 2 failed of 6 finished: not judged yet
        failing_[2].report(failing_[2].start(), "FAILED", statusDetails={"reason": "flash write"})
        ticking(lambda: status_of("thirty") != "running")
        return holder, holding, queued

    return run


def _outcome_count(rollout_id: str, number: int, outcome: str) -> int:
    return RolloutDevice.objects.filter(
        rollout__rollout_id=rollout_id, wave__number=number, outcome=outcome
    ).count()


def test_threshold_with_pause_keeps_queued_devices_queued_and_lets_in_flight_finish(
    wave_two_failing, operator
):
    holder, holding, queued = wave_two_failing("pause")
    shown = detail(operator, "thirty")
    assert shown["status"] == "paused"
    assert "3 of 7 finished devices failed" in shown["status_reason"]
    tick_for(1.0)  # paused: the queued devices are neither released from nor cancelled
    for device in queued:
        assert device.describe(device.notified_job)["execution"]["status"] == "QUEUED"
        assert not device.told_nothing_pending(0.1)
    holder.report(holding, "SUCCEEDED")
    holder.boot("2.0.0")
    ticking(lambda: _outcome_count("thirty", 2, "updated") == 5)
    assert wave_status("thirty", 2) == "running"  # two queued devices are not final
    assert _outcome_count("thirty", 2, "notified") == 2


def test_threshold_with_abort_keep_cancels_queued_devices_and_lets_in_flight_finish(
    wave_two_failing, operator
):
    holder, holding, queued = wave_two_failing("abort_keep")
    assert status_of("thirty") == "aborted"
    for device in queued:  # on the wire: nothing pending any more; the execution ended
        assert device.told_nothing_pending(5.0)
        with pytest.raises(Rejected) as refused:
            device.describe(device.notified_job)
        assert refused.value.body["code"] == "TerminalStateReached"
        assert "CANCELED" in refused.value.body["message"]
    holder.report(holding, "SUCCEEDED")  # accepted: in flight, it may finish
    holder.boot("2.0.0")
    ticking(lambda: wave_status("thirty", 2) == "halted")
    shown = detail(operator, "thirty")["waves"][1]["outcomes"]
    assert (shown["updated"], shown["failed"], shown["canceled"]) == (5, 3, 2)


def test_threshold_with_abort_force_cancels_the_in_flight_device(wave_two_failing, operator):
    holder, holding, queued = wave_two_failing("abort_force")
    assert status_of("thirty") == "aborted"
    assert all(device.told_nothing_pending(5.0) for device in [holder, *queued])
    with pytest.raises(Rejected) as refused:
        holder.report(holding, "SUCCEEDED")
    assert refused.value.body["code"] == "InvalidStateTransition"
    assert refused.value.body["executionState"]["status"] == "CANCELED"
    ticking(lambda: wave_status("thirty", 2) == "halted")
    shown = detail(operator, "thirty")["waves"][1]["outcomes"]
    assert (shown["updated"], shown["failed"], shown["canceled"]) == (4, 3, 3)


# --- c. silence is failure -----------------------------------------------------------------------


def test_silent_devices_end_canceled_and_timed_out_and_count_as_failures(fleet, operator):
    mute, stalled = devices = fleet("silent", 2)
    create_and_start(
        operator,
        "silence",
        devices,
        [REST],
        deadlines={"start_minutes": 10, "finish_minutes": 20},
        failure_policy={"threshold_count": 2, "action": "pause"},
    )
    taken_by(devices)
    job_id = stalled.start()  # then says nothing more; `mute` ignores its notification
    tick_for(1.0)
    assert _outcome_count("silence", 1, "failed") == 0  # real time: no deadline has passed
    ticking(lambda: _outcome_count("silence", 1, "failed") == 1, at_minutes=11)
    assert failing(operator, "silence") == {mute.device_id: ("NOT_STARTED", "not_started")}
    assert status_of("silence") == "running"  # one failure, threshold 2
    ticking(lambda: status_of("silence") == "paused", at_minutes=21)

    assert failing(operator, "silence") == {
        mute.device_id: ("NOT_STARTED", "not_started"),
        stalled.device_id: ("TIMED_OUT", ""),
    }
    shown = detail(operator, "silence")
    assert shown["waves"][0]["outcomes"]["failed"] == 2
    assert shown["failure_rate"]["failed"] == 2
    assert "2 of 2 finished devices failed" in shown["status_reason"]
    for device, status in ((mute, "CANCELED"), (stalled, "TIMED_OUT")):
        with pytest.raises(Rejected) as refused:
            device.describe(job_id)
        assert refused.value.body["code"] == "TerminalStateReached"
        assert status in refused.value.body["message"]
    assert mute.told_nothing_pending(2.0) and stalled.told_nothing_pending(2.0)


# --- d. verified success ------------------------------------------------------------------------


def boots_the_old_version(device: SimulatedDevice) -> None:
    device.report(device.start(), "SUCCEEDED")
    device.boot("1.0.0")


def dies_after_reporting(device: SimulatedDevice) -> None:
    device.report(device.start(), "SUCCEEDED")
    device.boot("2.0.0", back_online=False)
    device.client.close()


UNVERIFIED = [
    # (what the device does, minutes to jump past its check, failure, reason text)
    (boots_the_old_version, CONFIRM_MINUTES + 1, "NOT_CONFIRMED", "reports firmware 1.0.0"),
    (dies_after_reporting, 6, "UNHEALTHY", "not back online within 5 min"),
]


@pytest.mark.parametrize(
    ("behaviour", "jump", "failure", "reason"),
    UNVERIFIED,
    ids=["old-version-after-reboot", "never-back-online"],
)
def test_a_device_not_verified_is_not_updated_and_blocks_promotion(
    fleet, operator, behaviour, jump, failure, reason
):
    devices = fleet(f"verify-{failure.lower()}", 3)
    policy, health = {"threshold_count": 1, "action": "pause"}, {"online_minutes": 5}
    create_and_start(
        operator, "verify", devices, [count(2), REST], failure_policy=policy, health=health
    )
    good, bad = taken_by(in_wave(devices, "verify", 1))
    good.update("2.0.0")
    behaviour(bad)
    ticking(lambda: _outcome_count("verify", 1, "updated") == 1)
    tick_for(1.0)  # real time: the bad device is still being waited for, nothing promoted
    assert wave_status("verify", 2) == "pending"
    assert _outcome_count("verify", 1, "failed") == 0

    ticking(lambda: _outcome_count("verify", 1, "failed") == 1, at_minutes=jump)
    ticking(lambda: status_of("verify") == "paused")
    tick_for(1.0)
    shown = detail(operator, "verify")
    assert shown["waves"][0]["status"] != "passed" and shown["waves"][1]["status"] == "pending"
    assert shown["waves"][0]["outcomes"]["updated"] == 1
    ((device_id, (shown_failure, text)),) = failing(operator, "verify").items()
    assert (device_id, shown_failure) == (bad.device_id, failure) and reason in text, text
    (late,) = in_wave(devices, "verify", 2)
    assert late.notified(0.5) is None
    assert JobExecution.objects.filter(device__device_id=late.device_id).count() == 0
