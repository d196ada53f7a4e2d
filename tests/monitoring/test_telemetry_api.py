"""GET /api/v1/devices/<id>/telemetry/ (aggregates) and …/telemetry/points/ (raw, cursor-paged):
what a viewer reads, and 400 with field errors for anything outside the grammar."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import make_device
from tests.monitoring.telemetry_helpers import insert_points

pytestmark = pytest.mark.django_db


@pytest.fixture
def sensor():
    device = make_device("ta-1")
    now = timezone.now()
    insert_points(
        [(device.pk, "temp", now - timedelta(seconds=30 * n), float(n)) for n in range(20)]
        + [(device.pk, "hum", now - timedelta(seconds=30 * n), 50.0) for n in range(20)]
    )
    return device


def test_a_viewer_reads_aggregates_per_name_as_columns(sensor, viewer_api):
    answer = viewer_api.get("/api/v1/devices/ta-1/telemetry/?period=1h")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["device_id"], body["period"], body["bucket_seconds"]) == ("ta-1", "1h", 15)
    series = {s["name"]: s for s in body["series"]}
    assert set(series) == {"temp", "hum"}
    assert sum(series["temp"]["count"]) == 20
    assert (
        sum(a * c for a, c in zip(series["temp"]["avg"], series["temp"]["count"], strict=True))
        == 190
    )
    assert series["hum"]["min"] == series["hum"]["max"] == [50.0] * len(series["hum"]["t"])
    assert series["temp"]["t"] == sorted(series["temp"]["t"])

    only = viewer_api.get("/api/v1/devices/ta-1/telemetry/?period=24h&name=hum").json()
    assert [s["name"] for s in only["series"]] == ["hum"]
    assert only["bucket_seconds"] == 300


def test_the_default_period_is_24_hours_and_a_device_without_points_has_no_series(viewer_api):
    make_device("ta-empty")
    for url in (
        "/api/v1/devices/ta-empty/telemetry/",
        "/api/v1/devices/ta-empty/telemetry/?period=",
    ):
        body = viewer_api.get(url).json()
        assert (body["period"], body["series"]) == ("24h", [])


@pytest.mark.parametrize(
    "period",
    [
        "24h; DROP TABLE monitoring_telemetry_point",
        "1h' OR '1'='1",
        "2h",
        "24H",
        "9" * 5000,
        "1e308",
        "-1h",
        "%00",
    ],
)
def test_a_period_outside_the_grammar_is_400_with_the_field(sensor, viewer_api, period):
    answer = viewer_api.get(f"/api/v1/devices/ta-1/telemetry/?period={quote(period, safe='%')}")
    assert answer.status_code == 400
    if period != "%00":  # a NUL in the URL is refused before the view (fleetportal)
        assert "period" in answer.json()


@pytest.mark.parametrize("name", ["temp' OR 1=1 --", "a b", "n" * 65, "a%00b", "é"])
def test_a_hostile_name_is_400(sensor, viewer_api, name):
    answer = viewer_api.get(
        f"/api/v1/devices/ta-1/telemetry/?period=1h&name={quote(name, safe='%')}"
    )
    assert answer.status_code == 400
    answer = viewer_api.get(f"/api/v1/devices/ta-1/telemetry/points/?name={quote(name, safe='%')}")
    assert answer.status_code == 400


def test_an_unknown_device_is_404_and_anonymous_is_refused(sensor, viewer_api):
    assert viewer_api.get("/api/v1/devices/nope/telemetry/").status_code == 404
    assert viewer_api.get("/api/v1/devices/nope/telemetry/points/").status_code == 404
    assert APIClient().get("/api/v1/devices/ta-1/telemetry/").status_code in (401, 403)
    assert APIClient().get("/api/v1/devices/ta-1/telemetry/points/").status_code in (401, 403)


def test_raw_points_page_newest_first_with_a_cursor(sensor, viewer_api):
    url = "/api/v1/devices/ta-1/telemetry/points/?name=temp&page_size=7"
    seen = []
    pages = 0
    while url:
        body = viewer_api.get(url).json()
        seen += [row["value"] for row in body["results"]]
        url = body["next"]
        pages += 1
    assert seen == [float(n) for n in range(20)]  # newest (n = 0) first
    assert pages == 3


def test_raw_points_filter_by_time_range(sensor, viewer_api):
    now = timezone.now()
    since = quote((now - timedelta(seconds=95)).isoformat())
    until = quote((now - timedelta(seconds=31)).isoformat())
    body = viewer_api.get(
        f"/api/v1/devices/ta-1/telemetry/points/?name=temp&since={since}&until={until}"
    ).json()
    assert [row["value"] for row in body["results"]] == [2.0, 3.0]
    assert body["next"] is None


@pytest.mark.parametrize(
    "query",
    [
        "cursor=forged",
        "cursor=" + "x" * 600,
        "page_size=0",
        "page_size=100000000000000000000000",
        "since=yesterday",
        "since=99999-01-01T00:00:00Z",
        "until=%00",
    ],
)
def test_bad_points_parameters_are_400(sensor, viewer_api, query):
    assert viewer_api.get(f"/api/v1/devices/ta-1/telemetry/points/?{query}").status_code == 400


def test_queries_do_not_grow_with_the_points(viewer_api, django_assert_max_num_queries):
    device = make_device("ta-many")
    now = timezone.now()
    insert_points(
        [(device.pk, f"m{n % 5}", now - timedelta(seconds=n), float(n)) for n in range(500)]
    )
    for url in (
        "/api/v1/devices/ta-many/telemetry/?period=1h",
        "/api/v1/devices/ta-many/telemetry/points/?page_size=500",
    ):
        with django_assert_max_num_queries(6):
            assert viewer_api.get(url).status_code == 200
