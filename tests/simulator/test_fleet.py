"""A simulated fleet of 20 against the real stack (Mosquitto and the claim broker, the bridge,
PostgreSQL): the devices provision themselves by claim, report their shadow, apply a desired
change and a configuration change, and leave cleanly — all seen from the portal's side."""

import re
import stat
from dataclasses import replace

import pytest

from devices.choices import CredentialStatus, DeviceStatus
from devices.models import Device, DeviceCredential
from monitoring.models import Presence
from shadows.models import Shadow
from simulator import Fleet, FleetThread, device_ids
from simulator.identity import Store
from tests.conftest import make_group
from tests.simulator.helpers import claim_template, environment, eventually, quick_profile

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FLEET = 20


def reported(device_ids, name: str = ""):
    """device_id -> reported state of its classic (or named) shadow."""
    rows = Shadow.objects.filter(device__device_id__in=device_ids, name=name)
    return dict(rows.values_list("device__device_id", "reported_state"))


def test_a_fleet_provisions_itself_by_claim_and_keeps_shadow_and_configuration(
    broker, bridge, tmp_path, operator_api
):
    group = make_group("simulated")
    claim = claim_template("simfactory", tmp_path / "claim", group=group)
    ids = device_ids(FLEET, "claimed")
    store = tmp_path / "devices"
    fleet = FleetThread(Fleet(environment(broker, store, claim=claim), quick_profile(), ids))
    fleet.start()
    try:
        # Provisioned by claim: registered through the template, active once they spoke.
        eventually(
            lambda: (
                Device.objects.filter(device_id__in=ids, status=DeviceStatus.ACTIVE).count()
                == FLEET
            ),
            timeout=90,
            what="20 devices provisioned and active",
        )
        assert set(Device.objects.filter(group=group).values_list("device_id", flat=True)) == set(
            ids
        )
        live = DeviceCredential.objects.filter(
            device__device_id__in=ids, status=CredentialStatus.ACTIVE
        )
        assert live.count() == FLEET
        for device_id in ids:  # the key was made on the device and stays there
            key_file = Store(store).current(device_id).key_file
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        # Reporting: battery, signal and the firmware version in the classic shadow.
        eventually(
            lambda: sum("battery" in r and "signal" in r for r in reported(ids).values()) == FLEET,
            what="every device reporting",
        )
        assert {r["firmware_version"] for r in reported(ids).values()} == {"1.0.0"}
        eventually(
            lambda: (
                Presence.objects.filter(device__device_id__in=ids, online=True).count() == FLEET
            ),
            what="every device online",
        )

        # A desired change made by an integrator reaches the device, which reports it back.
        target = ids[3]
        url = f"/api/v1/devices/{target}/shadows/~classic/"
        changed = operator_api.patch(url, {"desired": {"led": "blue"}}, format="json")
        assert changed.status_code == 200, changed.content
        eventually(lambda: reported([target])[target].get("led") == "blue", what="led applied")
        assert operator_api.get(url).json()["delta"] == {}

        # A configuration value on the group: every member applies it.
        value = {"group": str(group.pk), "key": "log_level", "value": "debug"}
        assert operator_api.post("/api/v1/config-values/", value, format="json").status_code == 201
        summary = f"/api/v1/groups/{group.pk}/config-summary/"
        eventually(
            lambda: operator_api.get(summary).json()["applied"] == FLEET,
            what="configuration applied by every member",
        )
        assert {r.get("log_level") for r in reported(ids, "config").values()} == {"debug"}
    finally:
        stats = fleet.stop()

    assert stats.count["provisioned"] == FLEET
    assert len(stats.connected_devices) == FLEET
    assert stats.count["desired_applied"] >= 1 and stats.count["config_applied"] >= FLEET
    assert stats.errors == {}, stats.last_errors
    # Stopping is a clean leave: each device said so before it disconnected.
    eventually(
        lambda: Presence.objects.filter(device__device_id__in=ids, online=False).count() == FLEET,
        what="every device offline after the stop",
    )
    assert "provisioned by claim: 20" in stats.summary(FLEET)


def test_a_second_run_finds_its_certificates_and_does_not_claim_again(broker, bridge, tmp_path):
    claim = claim_template("simagain", tmp_path / "claim")
    ids = device_ids(2, "again")
    env = environment(broker, tmp_path / "devices", claim=claim)
    first = FleetThread(Fleet(env, quick_profile(), ids)).start()
    eventually(lambda: Device.objects.filter(device_id__in=ids).count() == 2, what="claimed")
    eventually(lambda: len(first.stats.connected_devices) == 2, what="connected")
    assert first.stop().count["provisioned"] == 2

    second = FleetThread(Fleet(env, quick_profile(), ids)).start()
    eventually(lambda: len(second.stats.connected_devices) == 2, what="connected again")
    stats = second.stop()
    assert (stats.count["provisioned"], stats.count["identities_loaded"]) == (0, 2)
    assert stats.errors == {}, stats.last_errors
    assert DeviceCredential.objects.filter(device__device_id__in=ids).count() == 2


def test_devices_claim_with_keys_the_portal_makes_and_take_the_name_it_gives(
    broker, bridge, tmp_path, settings
):
    settings.CLAIM_CREATE_KEYS = True
    claim = claim_template("simkeys", tmp_path / "claim", allow_create_keys=True)
    env = environment(broker, tmp_path / "devices", claim=replace(claim, create_keys=True))
    fleet = FleetThread(Fleet(env, quick_profile(), device_ids(2, "unnamed"))).start()
    try:
        eventually(lambda: len(fleet.stats.connected_devices) == 2, what="connected")
    finally:
        stats = fleet.stop()
    named = set(stats.connected_devices)
    assert all(re.fullmatch(r"dev-[0-9a-f]{24}", device_id) for device_id in named), named
    assert set(Store(tmp_path / "devices").device_ids()) == named
    assert set(Device.objects.values_list("device_id", flat=True)) >= named
    assert stats.errors == {}, stats.last_errors
    # The next run finds them under the names it asked for and connects as the portal's.
    again = FleetThread(Fleet(env, quick_profile(), device_ids(2, "unnamed"))).start()
    eventually(lambda: len(again.stats.connected_devices) == 2, what="connected again")
    stats = again.stop()
    assert (set(stats.connected_devices), stats.count["provisioned"]) == (named, 0)


def test_a_device_whose_claim_gets_no_answer_tries_again(broker, bridge, tmp_path):
    claim = claim_template("simlater", tmp_path / "claim")
    ids = device_ids(1, "patient")
    fleet = FleetThread(
        Fleet(environment(broker, tmp_path / "devices", claim=claim), quick_profile(), ids)
    )
    with broker.stopped():  # the factory's network is down when the device first powers up
        fleet.start()
        eventually(lambda: fleet.stats.count["provisioning_retries"] >= 1, what="a retry")
    try:
        eventually(lambda: Device.objects.filter(device_id__in=ids).exists(), timeout=60)
        eventually(lambda: len(fleet.stats.connected_devices) == 1, what="connected")
    finally:
        stats = fleet.stop()
    assert stats.count["provisioned"] == 1
    assert stats.errors == {}, stats.last_errors
