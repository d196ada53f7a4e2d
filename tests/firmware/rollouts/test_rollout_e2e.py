"""Staged rollouts end to end with real parts: Mosquitto, the bridge, a Celery worker running the
rollouts tick (sent here as beat would), and simulated devices (paho, mutual TLS, portal-issued
certificates) that take their wave's job over MQTT — start-next, IN_PROGRESS, SUCCEEDED — and
then report the new firmware_version in their classic shadow, as after a reboot."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from devices.models import Device
from firmware.rollouts.models import Rollout, RolloutEvent
from firmware.tasks import rollouts_tick
from tests.conftest import make_user, token_client
from tests.firmware.helpers import make_version
from tests.firmware.rollouts.e2e_helpers import (
    API,
    SimulatedDevice,
    every_message_is_seen,  # noqa: F401  (an autouse fixture)
    status_of,
    ticking,
    wave_status,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_two_wave_rollout_with_a_manual_gate_approved_by_a_second_person_completes(
    celery_worker, bridge, broker, device_client
):
    firmware = make_version("2.0.0")
    devices = [SimulatedDevice(broker, device_client, f"e2e-{n}") for n in range(3)]
    creator = token_client(make_user("otto", "Fleet operator"))
    approver = token_client(make_user("ada", "Fleet operator"))
    body = {
        "rollout_id": "e2e",
        "firmware": str(firmware.pk),
        "targets": {"devices": [d.device_id for d in devices]},
        "waves": [
            {"selector": "count", "count": 1, "gate": "manual"},
            {"selector": "percent", "percent": 100},
        ],
        "failure_policy": {"threshold_count": 1, "action": "pause"},
        "approval_required": True,
    }
    assert creator.post(API, body, format="json").status_code == 201
    assert creator.post(f"{API}e2e/start/", {}, format="json").json()["status"] == (
        "awaiting_approval"
    )
    assert creator.post(f"{API}e2e/approve/", {}, format="json").status_code == 403
    assert approver.post(f"{API}e2e/approve/", {}, format="json").json()["status"] == "running"

    def first_wave_updated() -> bool:
        taker = next((d for d in devices if d.notified(0.1)), None)
        if taker is not None:
            taker.update("2.0.0")
        return taker is not None

    ticking(first_wave_updated)
    ticking(lambda: wave_status("e2e", 1) == "awaiting_approval")
    gate = f"{API}e2e/waves/1/approve/"
    refused = creator.post(gate, {}, format="json")
    assert refused.status_code == 403 and "someone else" in refused.json()["approved_by"][0]
    assert approver.post(gate, {}, format="json").status_code == 200

    waiting = [d for d in devices if Device.objects.get(device_id=d.device_id).firmware_version
               == "1.0.0"]  # fmt: skip
    assert len(waiting) == 2

    def second_wave_done() -> bool:
        for device in list(waiting):
            if device.notified(0.1):
                device.update("2.0.0")
                waiting.remove(device)
        return not waiting and status_of("e2e") == "completed"

    ticking(second_wave_done, timeout=30)
    detail = approver.get(f"{API}e2e/").json()
    assert [w["outcomes"]["updated"] for w in detail["waves"]] == [1, 2]
    assert RolloutEvent.objects.filter(kind="gate_approved", actor="token:ada").exists()
    assert not RolloutEvent.objects.filter(kind__contains="approved", actor="token:otto").exists()


def test_a_device_in_another_time_zone_is_notified_only_inside_its_window(
    celery_worker, bridge, broker, device_client
):
    firmware = make_version("2.0.0")
    here = SimulatedDevice(broker, device_client, "e2e-ny", zone="America/New_York")
    away = SimulatedDevice(broker, device_client, "e2e-tokyo", zone="Asia/Tokyo")
    # A daily window that opened a minute ago in New York's wall-clock time: at the same wall
    # clock in Tokyo (13 or 14 hours away) it is closed.
    opened = (timezone.now() - timedelta(minutes=1)).astimezone(ZoneInfo("America/New_York"))
    body = {
        "rollout_id": "e2e-zones",
        "firmware": str(firmware.pk),
        "targets": {"devices": ["e2e-ny", "e2e-tokyo"]},
        "waves": [{"selector": "percent", "percent": 100}],
        "window": {
            "cron": f"cron({opened.minute} {opened.hour} * * ? *)",
            "duration_in_minutes": 30,
            "timezone": "device_local",
        },
    }
    operator = token_client(make_user("otto", "Fleet operator"))
    assert operator.post(API, body, format="json").status_code == 201
    assert operator.post(f"{API}e2e-zones/start/", {}, format="json").status_code == 200

    ticking(lambda: here.notified(0.2) is not None)
    for _ in range(5):  # more ticks: Tokyo's window stays closed
        rollouts_tick.delay()
    assert away.notified(2.0) is None
    zones = dict(
        Rollout.objects.get(rollout_id="e2e-zones").devices.values_list(
            "device__device_id", "time_zone"
        )
    )
    assert zones == {"e2e-ny": "America/New_York", "e2e-tokyo": "Asia/Tokyo"}
