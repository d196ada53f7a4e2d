"""The fleet summary's figures against a hand-counted fleet (tests/monitoring/summary/fleet.py),
through the REST API an integrator reads; the query count that does not grow with the fleet;
who may read it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import FleetSnapshot, OnlineSample
from monitoring.summary import services
from tests.conftest import make_user, token_client
from tests.firmware.rollouts.helpers import fleet
from tests.monitoring.summary.fleet import NOW, hand_counted_fleet

pytestmark = pytest.mark.django_db

URL = "/api/v1/fleet/summary/"


def test_every_figure_matches_the_hand_count(viewer_api):
    hand_counted_fleet()
    assert services.refresh(NOW) is True
    summary = viewer_api.get(URL).json()

    assert summary["devices"] == {
        "total": 8,
        "by_status": {
            "registered": 1,
            "provisioning": 0,
            "active": 5,
            "maintenance": 1,
            "decommissioned": 1,
        },
    }
    assert summary["presence"] == {
        "online": 2,
        "offline": 2,
        "never_connected": 3,
        "in_service": 7,
    }
    assert summary["firmware"] == [
        {
            "device_type": "gateway",
            "devices": 2,
            "versions": [{"version": "", "devices": 1}, {"version": "3.1", "devices": 1}],
            "other": 0,
        },
        {
            "device_type": "sensor",
            "devices": 5,
            "versions": [
                {"version": "1.0.0", "devices": 3},
                {"version": "", "devices": 1},
                {"version": "2.0.0", "devices": 1},
            ],
            "other": 0,
        },
    ]
    assert summary["certificates"] == {"expiring_7_days": 1, "expiring_30_days": 2}
    assert summary["configuration"] == {"drifting_devices": 2}
    assert summary["alerts"] == {
        "open": 3,
        "by_severity": {"critical": 2, "warning": 1, "info": 0},
    }
    assert summary["jobs"] == {"IN_PROGRESS": 1, "SCHEDULED": 1}
    assert summary["rollouts"] == {
        "awaiting_approval": 0,
        "scheduled": 0,
        "running": 1,
        "paused": 1,
    }
    # The refresh sampled 2 of 7 online; with the sample of 23 h ago (0.5); not the 25 h one.
    ratio = summary["online_ratio_24h"]
    assert [s["ratio"] for s in ratio["samples"]] == [0.5, round(2 / 7, 4)]
    assert ratio["average"] == round((0.5 + round(2 / 7, 4)) / 2, 4)
    assert [(e["device_id"], e["event_type"], e["actor"]) for e in summary["latest_events"]] == [
        ("m1", "status_changed", "otto"),
        ("a1", "registered", "system"),
    ]
    assert [(a["device_id"], a["severity"]) for a in summary["latest_alerts"]] == [
        ("a4", "warning"),
        ("a2", "critical"),
        ("a1", "critical"),
    ]
    assert summary["latest_alerts"][0]["rule"] == "battery low"


def test_a_refresh_without_change_reports_none_and_samples_once_per_interval(settings):
    hand_counted_fleet()
    assert services.refresh(NOW) is True
    assert services.refresh(NOW + timedelta(seconds=15)) is False
    assert OnlineSample.objects.filter(sampled_at__gt=NOW - timedelta(hours=1)).count() == 1
    settings.FLEET_ONLINE_SAMPLE_SECONDS = 10
    services.refresh(NOW + timedelta(seconds=20))
    assert OnlineSample.objects.filter(sampled_at__gt=NOW - timedelta(hours=1)).count() == 2
    # Samples older than two days go when a new one is taken: the 25 h one stays.
    assert OnlineSample.objects.count() == 4


def test_the_first_read_counts_when_beat_never_did(viewer_api):
    fleet(3)
    assert not FleetSnapshot.objects.exists()
    assert viewer_api.get(URL).json()["presence"]["never_connected"] == 3
    assert FleetSnapshot.objects.count() == 1


def reads(api) -> int:
    services.refresh()
    with CaptureQueriesContext(connection) as refresh_queries:
        services.refresh()
    with CaptureQueriesContext(connection) as read_queries:
        assert api.get(URL).status_code == 200
    return len(refresh_queries), len(read_queries)


def test_the_query_counts_do_not_grow_with_the_fleet(viewer_api):
    hand_counted_fleet()
    small = reads(viewer_api)
    fleet(40, prefix="more")
    fleet(20, prefix="gw", device_type="gateway", firmware_version="9.9")
    assert reads(viewer_api) == small


def test_every_role_reads_it_and_a_user_without_a_role_does_not(
    viewer_api, operator_api, admin_api
):
    for api in (viewer_api, operator_api, admin_api):
        assert api.get(URL).status_code == 200
    nobody = token_client(make_user("nobody"))
    assert nobody.get(URL).status_code == 403
    assert viewer_api.post(URL, {}).status_code == 405
