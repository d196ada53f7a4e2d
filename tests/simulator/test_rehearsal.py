"""A rollout rehearsal on 20 simulated devices with every fault knob on: each knob ends its
devices in the state docs/simulator.md promises, and the healthy ones update — one of them after
its download broke off half way and resumed with Range.

Real parts: Mosquitto, the bridge, a Celery worker running the rollouts tick, the portal serving
the image over HTTP (live_server), a real signed image. The devices use certificates the portal
issued. Time is moved on the worker (`rollouts_tick(at=…)`), never slept through."""

import pytest

from devices.choices import CredentialStatus
from devices.models import DeviceCredential
from firmware import signing
from firmware.rollouts.models import RolloutDevice
from monitoring.models import Presence
from monitoring.telemetry import counters
from shadows.models import Shadow
from simulator import Fleet, FleetThread, device_ids
from simulator.identity import Store
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401  (a fixture)
from tests.firmware.rollouts.e2e_helpers import (
    API,
    every_message_is_seen,  # noqa: F401  (an autouse fixture)
    ticking,
)
from tests.monitoring.telemetry_helpers import clean_telemetry  # noqa: F401  (a fixture)
from tests.simulator.helpers import environment, eventually, issued_store, quick_profile

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FAULTS = {
    "fail_update": 0.15,
    "never_start": 0.1,
    "silent_mid_update": 0.1,
    "boot_old_version": 0.15,
    "unhealthy_after_update": 0.15,
    "offline_and_return": 0.2,
    "rotate_certificate": 0.2,
    "malformed_messages": 0.2,
    "interrupted_download": 0.4,
}
CLEAN_LEAVE = {"client_disconnect", "state_offline"}  # presence reasons of a device that left
SEED = 1  # with it each knob has at least one of the 20 devices (asserted below)
IMAGE_BYTES = 300_000
START_MINUTES, FINISH_MINUTES, CONFIRM_MINUTES = 10, 20, 30  # CONFIRM: the worker's default

# What each update knob's devices show while the rollout runs at real time, then at the end.
WHILE_RUNNING = {
    None: {("reported", ""), ("updated", "")},
    "fail_update": {("failed", "FAILED")},
    "unhealthy_after_update": {("failed", "UNHEALTHY")},
    "boot_old_version": {("in_progress", "")},  # SUCCEEDED, waiting for the version
    "silent_mid_update": {("in_progress", "")},
    "never_start": {("notified", "")},
}
AT_THE_END = {
    None: ("updated", ""),
    "fail_update": ("failed", "FAILED"),
    "unhealthy_after_update": ("failed", "UNHEALTHY"),
    "boot_old_version": ("failed", "NOT_CONFIRMED"),
    "silent_mid_update": ("failed", "TIMED_OUT"),
    "never_start": ("failed", "NOT_STARTED"),
}


def outcomes(rollout_id: str) -> dict[str, tuple[str, str]]:
    rows = RolloutDevice.objects.filter(rollout__rollout_id=rollout_id)
    return {d: (o, f) for d, o, f in rows.values_list("device__device_id", "outcome", "failure")}


def matches(rollout_id: str, expected: dict[str, set]) -> bool:
    shown = outcomes(rollout_id)
    return len(shown) == len(expected) and all(shown[d] in expected[d] for d in expected)


def settle(expected: dict[str, set], **how) -> None:
    """Tick (ticking's `how`) until every device's outcome is one `expected` allows; failing,
    name the devices that are elsewhere."""
    try:
        ticking(lambda: matches("rehearsal", expected), **how)
    except AssertionError:
        shown = outcomes("rehearsal")
        stuck = {d: (shown.get(d), allowed) for d, allowed in expected.items()}
        stuck = {d: seen for d, seen in stuck.items() if seen[0] not in seen[1]}
        raise AssertionError(f"devices not where their knob puts them: {stuck}") from None


@pytest.fixture
def rehearsal(broker, bridge, celery_worker, live_server, firmware_env, settings, tmp_path):  # noqa: F811
    """The fleet running (profile, ids, FleetThread) with 2.0.0 catalogued and signed."""
    settings.PUBLIC_URL = live_server.url  # where the devices' signed download URLs point
    profile = quick_profile(FAULTS, seed=SEED)
    ids = device_ids(20, "rehearse")
    store = issued_store(tmp_path / "devices", ids)
    version = add("2.0.0", image(IMAGE_BYTES))
    env = environment(broker, store, firmware_key_pem=signing.current().public_key_pem)
    fleet = FleetThread(Fleet(env, profile, ids)).start()
    try:
        yield profile, ids, fleet, version
    finally:
        fleet.stop()


def test_each_fault_knob_ends_its_devices_where_it_promises(
    rehearsal,
    operator_api,
    clean_telemetry,  # noqa: F811
):
    profile, ids, fleet, version = rehearsal
    update_fault = {d: profile.update_fault(d) for d in ids}
    having = {knob: [d for d in ids if knob in profile.faults_of(d)] for knob in FAULTS}
    assert all(having.values()), {k: len(v) for k, v in having.items()}
    healthy = [d for d in ids if update_fault[d] is None]
    resumed = [d for d in healthy if d in having["interrupted_download"]]
    assert resumed, "the seed gives no healthy device an interrupted download"

    # The registry learns each device's version from its shadow: the rollout needs it.
    eventually(
        lambda: list(_versions(ids).values()) == ["1.0.0"] * len(ids),
        timeout=60,
        what="every device reporting firmware 1.0.0",
    )
    body = {
        "rollout_id": "rehearsal",
        "firmware": str(version.pk),
        "targets": {"devices": ids},
        "waves": [{"selector": "percent", "percent": 100}],
        "deadlines": {"start_minutes": START_MINUTES, "finish_minutes": FINISH_MINUTES},
        "failure_policy": {"threshold_count": 100, "action": "pause"},
        "health": {
            "online_minutes": 5,
            "bounds": {"field": "reported.errors", "op": "lt", "value": 10},
        },
    }
    created = operator_api.post(API, body, format="json")
    assert created.status_code == 201, created.json()
    started = operator_api.post(f"{API}rehearsal/start/", {}, format="json")
    assert started.json()["status"] == "running", started.json()

    # At real time: updates, failures and the unhealthy devices settle; the rest wait.
    running = {d: WHILE_RUNNING[update_fault[d]] for d in ids}
    settle(running, timeout=150, every=0.5)
    # Past the start deadline: the devices that never started are failed NOT_STARTED.
    ticking(
        lambda: all(
            outcomes("rehearsal")[d] == AT_THE_END["never_start"] for d in having["never_start"]
        ),
        at_minutes=START_MINUTES + 1,
    )
    # Past the finish deadline: the silent ones time out.
    ticking(
        lambda: all(
            outcomes("rehearsal")[d] == AT_THE_END["silent_mid_update"]
            for d in having["silent_mid_update"]
        ),
        at_minutes=FINISH_MINUTES + 1,
    )
    # Past the confirmation deadline: those that booted the old version are NOT_CONFIRMED.
    settle({d: {AT_THE_END[update_fault[d]]} for d in ids}, at_minutes=CONFIRM_MINUTES + 1)
    shown = outcomes("rehearsal")
    assert {d: shown[d] for d in ids} == {d: AT_THE_END[update_fault[d]] for d in ids}
    stats = fleet.stats
    store = Store(fleet.fleet.env.store)

    # The interrupted downloads were resumed with Range (206) and their image verified.
    downloaded = [
        d
        for d in having["interrupted_download"]
        if update_fault[d] not in ("never_start", "silent_mid_update")
    ]
    assert stats.count["downloads_resumed"] >= len(downloaded) >= 1
    assert all(shown[d] == ("updated", "") for d in resumed)
    assert _versions(healthy) == dict.fromkeys(healthy, "2.0.0")

    # Rotated certificates: the new one is the device's only live certificate, the old one
    # superseded, and the device holds the new one.
    for device_id in having["rotate_certificate"]:
        if update_fault[device_id] == "silent_mid_update":
            continue  # it may have gone silent before its rotation
        eventually(lambda d=device_id: _rotated(d, store), what=f"{device_id} rotated")

    # Gone silent: offline, and not by a clean leave (the link dropped; the will followed).
    for device_id in having["silent_mid_update"]:
        presence = Presence.objects.get(device__device_id=device_id)
        assert not presence.online, device_id
        assert presence.reason not in CLEAN_LEAVE, (device_id, presence.reason)

    # Offline and back: more than one connection seen (a device drops only between jobs, and
    # the bridge records the reconnection a moment later: waited for, not read once).
    def reconnected(device_id: str) -> bool:
        return Presence.objects.get(device__device_id=device_id).connections >= 2

    for device_id in having["offline_and_return"]:
        if update_fault[device_id] == "silent_mid_update":
            continue
        eventually(lambda d=device_id: reconnected(d), timeout=60, what=f"{device_id} back")

    # Malformed messages: refused or dropped and counted, nothing stored.
    assert stats.count["malformed_sent"] >= len(having["malformed_messages"])
    assert stats.count["rejections"] >= 1
    dropped = counters._redis().hgetall(counters.key(counters.DROPPED_BY_DEVICE))
    dropped = {k.decode(): int(v) for k, v in dropped.items()}
    for device_id in having["malformed_messages"]:
        config = Shadow.objects.filter(device__device_id=device_id, name="config").first()
        assert config is None or "levels" not in config.reported_state
    assert any(dropped.get(d) for d in having["malformed_messages"]), dropped
    assert not stats.errors, stats.last_errors


def _versions(device_ids) -> dict[str, str]:
    rows = Shadow.objects.filter(device__device_id__in=device_ids, name="")
    return {
        d: r.get("firmware_version")
        for d, r in rows.values_list("device__device_id", "reported_state")
    }


def _rotated(device_id: str, store: Store) -> bool:
    credentials = DeviceCredential.objects.filter(device__device_id=device_id)
    live = [c for c in credentials if c.status == CredentialStatus.ACTIVE]
    superseded = [c for c in credentials if c.revocation_reason == "superseded"]
    held = store.current(device_id)
    return (
        len(live) == 1
        and len(superseded) == 1
        and held is not None
        and held.certificate_id() == live[0].fingerprint
    )
