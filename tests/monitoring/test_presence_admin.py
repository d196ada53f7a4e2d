"""Presence in the admin (read-only: derived) and device type health (edited by fleet admins);
the beat task."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device
from monitoring.models import DeviceTypeHealth, Presence
from monitoring.presence import tasks
from tests.conftest import make_device
from tests.monitoring.test_presence import connect

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_presence_is_read_only_even_for_a_fleet_admin(client, fleet_admin):
    device = make_device("a-1", status=DeviceStatus.ACTIVE)
    connect("a-1", "10.0.0.1:1", at=T0)
    client.force_login(fleet_admin)
    assert client.get("/admin/monitoring/presence/").status_code == 200
    assert client.get("/admin/monitoring/presence/add/").status_code == 403
    page = client.get(f"/admin/monitoring/presence/{device.pk}/change/")
    assert page.status_code == 200 and b'name="online"' not in page.content
    client.post(f"/admin/monitoring/presence/{device.pk}/change/", {"online": ""})
    assert Presence.objects.get(pk=device.pk).online


@pytest.mark.django_db
def test_a_fleet_admin_sets_a_device_types_heartbeat_and_keys_and_bad_keys_are_refused(
    client, fleet_admin, viewer
):
    client.force_login(fleet_admin)
    add = "/admin/monitoring/devicetypehealth/add/"
    refused = client.post(
        add, {"device_type": "pump", "heartbeat_seconds": "5", "battery_key": "a..b"}
    )
    assert refused.status_code == 200 and not DeviceTypeHealth.objects.exists()
    assert b"errorlist" in refused.content
    saved = client.post(
        add,
        {
            "device_type": "pump",
            "heartbeat_seconds": "900",
            "battery_key": "power.battery",
            "signal_key": "rssi",
        },
    )
    assert saved.status_code == 302
    assert DeviceTypeHealth.objects.get().heartbeat_seconds == 900
    client.force_login(viewer)
    assert client.get("/admin/monitoring/devicetypehealth/").status_code == 200
    assert client.post(add, {"device_type": "x", "heartbeat_seconds": "900"}).status_code == 403


@pytest.mark.django_db
def test_the_beat_task_sweeps(settings):
    make_device("t-1", status=DeviceStatus.ACTIVE)
    connect("t-1", "10.0.0.2:1", at=timezone.now() - timedelta(hours=1))
    Device.objects.filter(device_id="t-1").update(last_seen=timezone.now() - timedelta(hours=1))
    assert tasks.sweep_heartbeats() == 1
    assert not Presence.objects.get(device__device_id="t-1").online
    assert tasks.sweep_heartbeats() == 0


@pytest.mark.django_db
def test_the_demo_fleet_gets_presence_from_its_last_seen():
    from django.core.management import call_command

    call_command("seed_demo", devices=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Device.objects.online().exists()  # nobody connected yet
    call_command("seed_demo_presence", stdout=open("/dev/null", "w"))  # noqa: SIM115
    online = Device.objects.online()
    assert online.exists()
    assert not online.filter(status=DeviceStatus.DECOMMISSIONED).exists()
    assert set(online.values_list("pk", flat=True)) <= set(
        Device.objects.filter(last_seen__gte=timezone.now() - timedelta(minutes=5)).values_list(
            "pk", flat=True
        )
    )
    # Each demo product reads battery and signal where the simulated devices report them; an
    # operator's own settings survive the next run.
    types = set(Device.objects.values_list("device_type", flat=True))
    health = DeviceTypeHealth.objects.all()
    assert {(h.device_type, h.battery_key, h.signal_key) for h in health} == {
        (t, "battery", "signal") for t in types
    }
    DeviceTypeHealth.objects.filter(device_type="gateway").update(battery_key="power.level")
    call_command("seed_demo_presence", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert DeviceTypeHealth.objects.get(device_type="gateway").battery_key == "power.level"
