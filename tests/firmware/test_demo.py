"""The mechanics of the README's walk-through ("ten minutes with the demo fleet"): `make run`'s
seed commands add nothing the second time, and the seeded rollout, run on the seeded devices by
the simulator with the `demo` profile, passes its canaries and halts in wave 2 at its threshold.

Real parts: Mosquitto, the bridge, a Celery worker running the rollouts tick, the portal serving
the image (live_server), the simulator with the certificates seed_demo_devices wrote. The soak is
passed by moving the worker's clock (`rollouts_tick(at=…)`), never slept through."""

import io
import json

import pytest
from django.core.management import call_command

from devices import services
from devices.choices import DeviceStatus
from devices.models import Device, DeviceCredential
from firmware import demo, signing
from firmware.models import FirmwareVersion
from firmware.rollouts.models import Rollout, RolloutDevice
from shadows.models import Shadow
from simulator import Fleet, FleetThread, profiles
from simulator.identity import Store
from tests.firmware.catalog_helpers import firmware_env  # noqa: F401  (a fixture)
from tests.firmware.rollouts.e2e_helpers import (
    API,
    every_message_is_seen,  # noqa: F401  (an autouse fixture)
    ticking,
)
from tests.simulator.helpers import environment, eventually

DEMO_DEVICES = 400  # bin/run's DEMO_DEVICES: the fleet the walk-through was written against
# The demo profile's faults and seed (which devices fail) with clocks short enough for a test.
QUICK = {"connect_spread_seconds": 2, "report_seconds": 2, "telemetry_seconds": 5}
QUICK |= {"reboot_seconds": 0.5}


def run(command: str, *arguments: str) -> str:
    out = io.StringIO()
    call_command(command, *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def demo_profile() -> profiles.Profile:
    shipped = profiles.load("demo")
    timing = {**shipped.timing.__dict__, **QUICK}
    document = {"seed": shipped.seed, "faults": shipped.faults, "timing": timing}
    return profiles.from_dict(document, name="demo")


@pytest.mark.django_db
def test_the_seed_commands_add_nothing_the_second_time(broker, firmware_env, tmp_path):  # noqa: F811
    store = tmp_path / "demo"
    run("seed_demo", "--devices", "60")
    live = list(demo.simulated_devices().order_by("device_id"))
    assert live, "seed_demo gave no device in service"

    first = run("seed_demo_devices", "--store", str(store))
    assert f"{len(live)} certificate(s) issued, 0 kept" in first
    # Each device has its certificate (one the portal knows as its own) and what it is.
    held = Store(store)
    assert held.device_ids() == [d.device_id for d in live]
    for device in live:
        fingerprint = held.current(device.device_id).certificate_id()
        assert DeviceCredential.objects.filter(device=device, fingerprint=fingerprint).exists()
        assert json.loads((store / device.device_id / "device.json").read_text()) == {
            "device_type": device.device_type,
            "hardware_version": device.hardware_version,
            "firmware_version": device.firmware_version,
        }
    credentials = DeviceCredential.objects.count()
    assert f"0 certificate(s) issued, {len(live)} kept" in run(
        "seed_demo_devices", "--store", str(store)
    )
    assert DeviceCredential.objects.count() == credentials

    # A certificate the portal does not know (a new database, an old store) is replaced.
    (store / live[0].device_id / "certificate.pem").unlink()
    assert f"1 certificate(s) issued, {len(live) - 1} kept" in run(
        "seed_demo_devices", "--store", str(store)
    )

    # A device decommissioned since is taken out of the store: the simulator stops running it.
    services.transition_devices([live[1]], DeviceStatus.DECOMMISSIONED, actor="ada", reason="x")
    assert "out of service removed" in run("seed_demo_devices", "--store", str(store))
    assert live[1].device_id not in held.device_ids()

    assert "1.6.0 catalogued; rollout temperature-sensors-1-6-0 created (draft)" in run(
        "seed_demo_rollout"
    )
    assert "already there; rollout temperature-sensors-1-6-0 already there (draft)" in run(
        "seed_demo_rollout"
    )
    assert FirmwareVersion.objects.filter(device_type=demo.DEVICE_TYPE).count() == 1
    assert Rollout.objects.count() == 1


def outcomes(wave: int) -> list[str]:
    rows = RolloutDevice.objects.filter(rollout__rollout_id=demo.ROLLOUT_ID, wave__number=wave)
    return sorted(rows.values_list("outcome", flat=True))


def failures() -> list[tuple]:
    rows = RolloutDevice.objects.filter(rollout__rollout_id=demo.ROLLOUT_ID, outcome="failed")
    return list(rows.values_list("device__device_id", "wave__number", "failure", "reason"))


def seen_since_reporting() -> bool:
    """Whether every wave-1 device sent something after reporting the new version (the health
    check's "back online"), so moving the clock past the soak finds it online."""
    rows = RolloutDevice.objects.filter(rollout__rollout_id=demo.ROLLOUT_ID, wave__number=1)
    return all(
        seen is not None and reported is not None and seen > reported
        for seen, reported in rows.values_list("device__last_seen", "reported_at")
    )


def rollout() -> Rollout:
    return Rollout.objects.get(rollout_id=demo.ROLLOUT_ID)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_seeded_rollout_passes_its_canaries_and_halts_in_wave_two(
    broker,
    bridge,
    celery_worker,
    live_server,
    firmware_env,  # noqa: F811
    settings,
    tmp_path,
    operator_api,
):
    settings.PUBLIC_URL = live_server.url  # where the devices' signed download URLs point
    run("seed_demo", "--devices", str(DEMO_DEVICES))
    run("seed_demo_devices", "--store", str(tmp_path / "demo"))
    run("seed_demo_rollout")
    store = Store(tmp_path / "demo")
    sensors = [d for d in store.device_ids() if store.info(d)["device_type"] == demo.DEVICE_TYPE]
    env = environment(broker, store.directory, firmware_key_pem=signing.current().public_key_pem)
    fleet = FleetThread(Fleet(env, demo_profile(), sensors)).start()
    try:
        # The sensors report the firmware the registry knows them by (1.4.2 or 1.5.0).
        eventually(
            lambda: (
                Shadow.objects.filter(device__device_id__in=sensors, name="").count()
                == len(sensors)
            ),
            timeout=60,
            what="every sensor reporting",
        )
        versions = set(Device.objects.filter(device_id__in=sensors).values_list("firmware_version"))
        assert versions == {("1.4.2",), ("1.5.0",)}

        started = operator_api.post(f"{API}{demo.ROLLOUT_ID}/start/", {}, format="json")
        assert started.json()["status"] == "running", started.json()
        # Wave 1: three canaries report 1.6.0; past their one-minute soak they count as
        # updated and the manual gate waits for the operator.
        ticking(lambda: outcomes(1) == ["reported"] * 3, timeout=60)
        eventually(seen_since_reporting, what="the canaries heard from after their report")
        ticking(lambda: rollout().waves.get(number=1).status == "awaiting_approval", at_minutes=2)
        assert outcomes(1) == ["updated"] * 3, failures()
        canaries = RolloutDevice.objects.filter(rollout__rollout_id=demo.ROLLOUT_ID, wave__number=1)
        for device_id in canaries.values_list("device__device_id", flat=True):
            assert store.info(device_id)["firmware_version"] == "1.6.0"  # kept for the next run
        approved = operator_api.post(f"{API}{demo.ROLLOUT_ID}/waves/1/approve/", {}, format="json")
        assert approved.status_code == 200, approved.json()

        # Wave 2: the demo profile's failures cross 10 % and the rollout pauses itself.
        ticking(lambda: rollout().status == "paused", timeout=90)
        halted = rollout()
        assert halted.status_reason.startswith("Wave 2: "), halted.status_reason
        assert "threshold 10.00 %" in halted.status_reason
        assert halted.waves.get(number=1).status == "passed"
        assert halted.waves.get(number=3).status == "pending"
        assert "failed" in outcomes(2)
        assert set(outcomes(3)) == {"assigned"}, "wave 3 was never reached"
    finally:
        stats = fleet.stop()
    assert not stats.errors, stats.last_errors
