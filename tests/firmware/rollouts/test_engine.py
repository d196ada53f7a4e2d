"""The rollout tick (firmware/rollouts/engine.py) with a controllable clock: waves run as jobs,
soaks and gates, the failure policy and its actions, silent devices, max in flight, order."""

from datetime import timedelta

import pytest

from devices.models import Device
from firmware.models import JobExecution
from firmware.rollouts import control
from firmware.rollouts import engine as rollouts
from firmware.rollouts.models import Rollout, RolloutDevice, RolloutEvent, Wave
from fleetportal.bridge import record
from tests.conftest import make_device
from tests.firmware.helpers import at, finish, make_version, start

pytestmark = pytest.mark.django_db


def make_rollout(devices, waves, **fields) -> Rollout:
    """A running rollout whose devices are assigned to waves as r-svc's start leaves them:
    `waves` = [(device count, wave fields)], devices in order."""
    fields.setdefault("firmware", make_version("2.0.0"))
    fields.setdefault("failure_kinds", ["FAILED", "REJECTED", "TIMED_OUT", "NOT_STARTED"])
    rollout = Rollout.objects.create(rollout_id="r1", status="running", **fields)
    left = list(devices)
    for number, (count, wave_fields) in enumerate(waves, start=1):
        wave = Wave.objects.create(
            rollout=rollout,
            number=number,
            selector="count",
            count=count,
            device_count=count,
            **wave_fields,
        )
        for i, device in enumerate(left[:count]):
            RolloutDevice.objects.create(
                rollout=rollout, device=device, wave=wave, position=(i * 7919) % 1000
            )
        left = left[count:]
    return rollout


def fleet(n):
    return [make_device(f"d-{i:03d}", firmware_version="1.0.0") for i in range(n)]


def wave_executions(rollout, number):
    return list(JobExecution.objects.filter(job__wave__rollout=rollout, job__wave__number=number))


def reports_new_version(execution, now):
    """The device reports the new version, then is heard from again (back online after its
    reboot, as firmware.rollouts.health checks)."""
    from firmware import engine

    engine.note_reported_versions({execution.device_id: "2.0.0"}, now)
    Device.objects.filter(pk=execution.device_id).update(last_seen=now + timedelta(seconds=1))


def succeed(rollout, number, now):
    """Every pending execution of the wave succeeds, and its device reports the new version."""

    for execution in wave_executions(rollout, number):
        if execution.status in ("QUEUED", "IN_PROGRESS"):
            finish(execution, "SUCCEEDED", now)
            reports_new_version(execution, now)


def outcomes(rollout, number):
    return sorted(
        RolloutDevice.objects.filter(wave__number=number, rollout=rollout).values_list(
            "outcome", flat=True
        )
    )


def test_three_waves_complete_with_their_soak_and_an_automatic_gate():
    rollout = make_rollout(fleet(6), [(1, {"soak_minutes": 10}), (2, {}), (3, {})])
    rollouts.tick(at(0))
    assert len(wave_executions(rollout, 1)) == 1 and not wave_executions(rollout, 2)
    succeed(rollout, 1, at(10))
    rollouts.tick(at(20))
    assert Wave.objects.get(rollout=rollout, number=1).status == "soaking"
    rollouts.tick(at(minutes=9))
    assert not wave_executions(rollout, 2)  # still soaking
    rollouts.tick(at(minutes=11))
    rollouts.tick(at(minutes=11, seconds=2))
    assert len(wave_executions(rollout, 2)) == 2
    succeed(rollout, 2, at(minutes=12))
    for t in range(13, 20):
        rollouts.tick(at(minutes=t))
        succeed(rollout, 3, at(minutes=t))
    rollout.refresh_from_db()
    assert rollout.status == "completed"
    assert outcomes(rollout, 3) == ["updated"] * 3
    assert not RolloutDevice.objects.filter(active=True).exists()


def test_a_manual_gate_waits_for_approval():
    rollout = make_rollout(fleet(2), [(1, {"gate": "manual"}), (1, {})], created_by="alice")
    rollouts.tick(at(0))
    succeed(rollout, 1, at(1))
    for t in (2, 4, 6):
        rollouts.tick(at(t))
    wave = Wave.objects.get(rollout=rollout, number=1)
    assert wave.status == "awaiting_approval" and not wave_executions(rollout, 2)
    control.approve_gate(wave, actor="bob", now=at(8))
    rollouts.tick(at(10))
    assert len(wave_executions(rollout, 2)) == 1
    assert RolloutEvent.objects.filter(kind="gate_approved", actor="bob").exists()


def _thirty_percent_fail(action):
    rollout = make_rollout(
        fleet(11),
        [(1, {}), (10, {})],
        failure_threshold_percent=30,
        failure_min_finished=5,
        failure_action=action,
    )
    rollouts.tick(at(0))
    succeed(rollout, 1, at(1))
    rollouts.tick(at(2))
    rollouts.tick(at(3))
    executions = sorted(wave_executions(rollout, 2), key=lambda e: e.pk)
    assert len(executions) == 10
    start(executions[9], at(4))  # in flight
    for execution in executions[:3]:
        finish(execution, "FAILED", at(5))
    for execution in executions[3:5]:
        start(execution, at(5))
        finish(execution, "SUCCEEDED", at(5))
        reports_new_version(execution, at(5))
    report = rollouts.tick(at(6))
    assert report["halted"] == ["r1"]
    rollout.refresh_from_db()
    assert rollout.threshold_crossed_at == at(6) and rollout.halted_at is not None
    return rollout, executions


def test_thirty_percent_failing_pauses_at_the_threshold():
    rollout, executions = _thirty_percent_fail("pause")
    assert rollout.status == "paused"
    assert JobExecution.objects.get(pk=executions[5].pk).status == "QUEUED"  # not cancelled
    control.resume(rollout, actor="bob", reason="checked")
    rollouts.tick(at(7))
    assert Rollout.objects.get(pk=rollout.pk).status == "running"  # the same wave goes on


def test_thirty_percent_failing_with_abort_keep_cancels_queued_and_lets_in_flight_finish():
    rollout, executions = _thirty_percent_fail("abort_keep")
    assert rollout.status == "aborted"
    canceled = JobExecution.objects.get(pk=executions[5].pk)
    # on the tick's clock, as the rollout's own records of the halt
    assert (canceled.status, canceled.last_updated_at) == ("CANCELED", at(6))
    assert canceled.job.completed_at == at(6)
    assert JobExecution.objects.get(pk=executions[9].pk).status == "IN_PROGRESS"
    finish(executions[9], "FAILED", at(8))
    rollouts.tick(at(9))
    device = RolloutDevice.objects.get(device_id=executions[9].device_id)
    assert (device.outcome, device.failure) == ("failed", "FAILED")
    assert Wave.objects.get(rollout=rollout, number=2).status == "halted"


def test_thirty_percent_failing_with_abort_force_cancels_in_flight_too():
    rollout, executions = _thirty_percent_fail("abort_force")
    assert rollout.status == "aborted"
    assert JobExecution.objects.get(pk=executions[9].pk).status == "CANCELED"
    assert RolloutDevice.objects.get(device_id=executions[9].device_id).outcome == "canceled"


def test_silent_devices_end_not_started_and_timed_out_and_count():
    rollout = make_rollout(
        fleet(2),
        [(2, {})],
        start_deadline_minutes=5,
        finish_deadline_minutes=10,
        failure_threshold_count=3,
    )
    rollouts.tick(at(0))
    first, second = sorted(wave_executions(rollout, 1), key=lambda e: e.pk)
    from firmware.protocol import service

    service.start_next(first.device.device_id, {}, now=at(60))
    rollouts.tick(at(minutes=6))
    second.refresh_from_db()
    assert second.status == "CANCELED" and second.status_details == {"reason": "not_started"}
    rollouts.tick(at(minutes=12))
    first.refresh_from_db()
    assert first.status == "TIMED_OUT"
    failures = dict(RolloutDevice.objects.values_list("device_id", "failure"))
    assert sorted(failures.values()) == ["NOT_STARTED", "TIMED_OUT"]


def test_max_in_flight_holds_and_release_follows_position():
    devices = fleet(6)
    rollout = make_rollout(devices, [(6, {"max_in_flight": 2})])
    rollouts.tick(at(0))
    released = wave_executions(rollout, 1)
    assert len(released) == 2
    positions = dict(RolloutDevice.objects.values_list("device_id", "position"))
    lowest = sorted(positions, key=positions.get)[:2]
    assert sorted(e.device_id for e in released) == sorted(lowest)
    rollouts.tick(at(5))
    assert len(wave_executions(rollout, 1)) == 2  # none finished: still two
    finish(released[0], "SUCCEEDED", at(6))
    from firmware import engine

    engine.note_reported_versions({released[0].device_id: "2.0.0"}, at(6))
    rollouts.tick(at(7))
    assert len(wave_executions(rollout, 1)) == 3


def test_a_success_with_the_old_version_is_not_updated(settings):
    settings.FIRMWARE_CONFIRM_MINUTES = 5
    rollout = make_rollout(fleet(1), [(1, {})], failure_kinds=["NOT_CONFIRMED"])
    rollouts.tick(at(0))
    (execution,) = wave_executions(rollout, 1)
    finish(execution, "SUCCEEDED", at(1))  # but keeps 1.0.0
    rollouts.tick(at(2))
    assert outcomes(rollout, 1) == ["in_progress"]
    rollouts.tick(at(minutes=7))
    device = RolloutDevice.objects.get()
    assert (device.outcome, device.failure) == ("failed", "NOT_CONFIRMED")


def test_a_device_found_unhealthy_while_its_wave_soaks_crosses_the_threshold():
    """The failure policy judges a soaking wave too: an unhealthy verdict comes during the soak
    (the wave soaks once no device is in flight), and must halt, not be promoted past."""
    rollout = make_rollout(
        fleet(3),
        [(2, {}), (1, {})],
        failure_threshold_count=1,
        health_online_minutes=5,
        failure_kinds=["UNHEALTHY"],
    )
    rollouts.tick(at(0))
    good, gone = sorted(wave_executions(rollout, 1), key=lambda e: e.pk)
    for execution in (good, gone):
        finish(execution, "SUCCEEDED", at(1))
    reports_new_version(good, at(2))
    from firmware import engine

    engine.note_reported_versions({gone.device_id: "2.0.0"}, at(2))  # and never heard again
    Device.objects.filter(pk=gone.device_id).update(last_seen=at(1))
    rollouts.tick(at(3))
    assert Wave.objects.get(rollout=rollout, number=1).status == "soaking"

    record.Reporter("bridge").caught_up()  # a bridge running, nothing waiting
    report = rollouts.tick(at(minutes=6))

    assert report["halted"] == ["r1"]
    rollout.refresh_from_db()
    assert rollout.status == "paused"
    waves = dict(Wave.objects.filter(rollout=rollout).values_list("number", "status"))
    assert waves == {1: "soaking", 2: "pending"}
    assert outcomes(rollout, 1) == ["failed", "updated"]
    rollouts.tick(at(minutes=7))
    assert not wave_executions(rollout, 2)  # paused: the next wave is not released
