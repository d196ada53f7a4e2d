"""GET /api/v1/devices/<id>/health/, …/presence-events/ and /api/v1/presence-events/."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import DeviceStatus
from monitoring.models import DeviceTypeHealth
from shadows.models import Shadow
from tests.conftest import make_device
from tests.monitoring.test_presence import connect, disconnect

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_health_shows_presence_battery_and_signal_at_the_types_keys_in_constant_queries(viewer_api):
    DeviceTypeHealth.objects.create(
        device_type="sensor", heartbeat_seconds=600, battery_key="power.battery", signal_key="rssi"
    )
    device = make_device(
        "h-1", device_type="sensor", status=DeviceStatus.ACTIVE, firmware_version="1.2"
    )
    Shadow.objects.create(
        device=device, name="", reported_state={"power": {"battery": 71}, "rssi": -60}
    )
    connect("h-1", "10.0.0.1:5000", at=T0)
    with CaptureQueriesContext(connection) as queries:
        response = viewer_api.get("/api/v1/devices/h-1/health/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["online"] is True and body["presence_reason"] == "connected"
    assert body["battery"] == 71 and body["signal"] == -60
    assert body["firmware_version"] == "1.2" and body["status"] == "active"
    assert body["configuration"] == {"applied": 0, "drifting": 0, "pending": 0}
    assert body["current_job"] is None and body["certificate_expires_at"] is None
    assert len(queries) <= 5  # auth (token, user, permissions) excluded below
    health_queries = [
        q
        for q in queries.captured_queries
        if "devices_device" in q["sql"] or "devicetypehealth" in q["sql"]
    ]
    assert len(health_queries) == 2


@pytest.mark.django_db
def test_health_of_an_unknown_device_is_404_and_hostile_ids_are_not_500(viewer_api):
    assert viewer_api.get("/api/v1/devices/nope/health/").status_code == 404
    assert viewer_api.get("/api/v1/devices/a%00b/health/").status_code in (400, 404)
    assert viewer_api.get("/api/v1/devices/" + "x" * 5000 + "/health/").status_code == 404


@pytest.mark.django_db
def test_presence_events_are_paged_filtered_and_read_only(viewer_api):
    for device_id in ("e-1", "e-2"):
        make_device(device_id, status=DeviceStatus.ACTIVE)
        connect(device_id, "10.0.0.2:1", at=T0)
        disconnect(device_id, "Client {} disconnected.", at=T0 + timedelta(seconds=5))
    body = viewer_api.get("/api/v1/presence-events/", {"device": "e-1"}).json()
    assert [e["event_type"] for e in body["results"]] == ["device_offline", "device_online"]
    assert body["results"][0]["event_data"]["reason"] == "client_disconnect"
    with CaptureQueriesContext(connection) as queries:
        page = viewer_api.get("/api/v1/presence-events/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert len(queries) <= 4  # no query per event
    assert (
        viewer_api.get("/api/v1/presence-events/", {"since": "2999-01-01T00:00:00Z"}).json()[
            "results"
        ]
        == []
    )
    bad = viewer_api.get("/api/v1/presence-events/", {"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()
    assert viewer_api.get("/api/v1/presence-events/", {"since": "x\x00"}).status_code == 400
    huge = viewer_api.get("/api/v1/presence-events/", {"since": "9" * 400})
    assert huge.status_code == 400
    assert len(viewer_api.get("/api/v1/devices/e-2/presence-events/").json()["results"]) == 2
    assert viewer_api.get("/api/v1/devices/none/presence-events/").status_code == 404
    assert viewer_api.post("/api/v1/presence-events/", {}).status_code in (403, 405)


@pytest.mark.django_db
def test_anonymous_callers_get_nothing(client):
    assert client.get("/api/v1/presence-events/").status_code in (401, 403)
    assert client.get("/api/v1/devices/x/health/").status_code in (401, 403)


@pytest.mark.django_db
def test_health_reads_certificate_configuration_and_current_job_in_the_same_queries(
    viewer_api, identity_env
):
    from django.utils import timezone

    from firmware.choices import ExecutionStatus
    from firmware.models import JobExecution
    from shadows.models import DeviceConfiguration
    from tests.devices.credential_helpers import credentialed
    from tests.firmware.jobs_helpers import make_job

    device = credentialed("h-2", status=DeviceStatus.ACTIVE).device
    Device = type(device)
    Device.objects.filter(pk=device.pk).update(last_seen=timezone.now())
    old = timezone.now() - timedelta(days=1)
    for key, applied in (("a", True), ("b", False), ("c", False)):
        DeviceConfiguration.objects.create(
            device=device,
            config_key=key,
            config_value=1,
            version=1,
            applied=applied,
            pushed_at=old if key == "b" else timezone.now(),
        )
    JobExecution.objects.create(job=make_job("queued-one"), device=device)
    JobExecution.objects.create(
        job=make_job("running-one"), device=device, status=ExecutionStatus.IN_PROGRESS
    )
    with CaptureQueriesContext(connection) as queries:
        body = viewer_api.get("/api/v1/devices/h-2/health/").json()
    assert body["certificate_expires_at"] is not None
    assert body["configuration"] == {"applied": 1, "drifting": 1, "pending": 1}
    assert body["current_job"] == {
        "job_id": "running-one",
        "status": "IN_PROGRESS",
        "execution_number": 1,
    }
    assert body["online"] is False  # never connected: no presence row
    health_queries = [
        q
        for q in queries.captured_queries
        if "devices_device" in q["sql"] or "devicetypehealth" in q["sql"]
    ]
    assert len(health_queries) == 2
