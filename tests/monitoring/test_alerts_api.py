"""/api/v1/alerts/ and acknowledging: filters, cursor paging, roles, query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.alerts import services
from monitoring.alerts.evaluation import evaluate
from monitoring.models import Alert
from tests.conftest import make_device
from tests.monitoring.alert_helpers import at, make_rule, report_battery

pytestmark = pytest.mark.django_db
URL = "/api/v1/alerts/"


def none(metric, window, now):
    return {}


def raise_alerts(devices: int, rule=None, prefix="d") -> list:
    rule = rule or make_rule(for_seconds=0)
    made = [make_device(f"{prefix}-{n}") for n in range(devices)]
    for device in made:
        report_battery(device, 5)
    evaluate(at(0), values=none)
    return made


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["device"] for row in response.json()["results"]]


def test_viewer_lists_alerts_newest_first_with_their_state(viewer_api):
    raise_alerts(2)
    body = viewer_api.get(URL).json()
    assert [row["state"] for row in body["results"]] == ["open", "open"]
    first = body["results"][0]
    assert first["rule_name"] == "low battery"
    assert first["severity"] == "warning"
    assert first["raised_at"].startswith("2026-03-01T12:00:00")


def test_filters_by_state_rule_device_and_severity(viewer_api, operator):
    raise_alerts(3)
    critical = make_rule("critical low", severity="critical", for_seconds=0)
    evaluate(at(1), values=none)
    resolved = make_device("fixed")
    report_battery(resolved, 5)
    evaluate(at(2), values=none)
    report_battery(resolved, 90)
    evaluate(at(3), values=none)
    services.acknowledge(Alert.objects.filter(device__device_id="d-0").first(), "otto")

    assert ids(viewer_api.get(URL, {"state": "resolved"})) == ["fixed", "fixed"]
    acknowledged = viewer_api.get(URL, {"state": "acknowledged"}).json()["results"]
    assert [(a["device"], a["acknowledged_by"]) for a in acknowledged] == [("d-0", "otto")]
    assert len(ids(viewer_api.get(URL, {"state": "open"}))) == 6
    assert len(ids(viewer_api.get(URL, {"rule": critical.pk}))) == 4
    assert len(ids(viewer_api.get(URL, {"severity": "critical"}))) == 4
    assert len(ids(viewer_api.get(URL, {"device": "d-1"}))) == 2


@pytest.mark.parametrize(
    "params",
    [{"state": "bogus"}, {"rule": "abc"}, {"rule": "99999"}, {"severity": "x"},
     {"device": "d" * 129}, {"cursor": "garbage"}, {"rule": str(2**70)}],
)  # fmt: skip
def test_bad_filters_are_a_400_or_an_empty_list_never_a_500(viewer_api, params):
    response = viewer_api.get(URL, params)
    assert response.status_code in (400, 404), response.content


def test_cursor_pages_through_every_alert_once(viewer_api):
    raise_alerts(7)
    seen, url = [], URL + "?page_size=3"
    while url:
        body = viewer_api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(Alert.objects.values_list("pk", flat=True))


def test_list_query_count_does_not_grow_with_the_alerts(viewer_api):
    raise_alerts(1, prefix="a")
    with CaptureQueriesContext(connection) as few:
        viewer_api.get(URL)
    raise_alerts(25, rule=make_rule("second", for_seconds=0), prefix="b")
    with CaptureQueriesContext(connection) as many:
        assert len(ids(viewer_api.get(URL))) == 50  # a full page: both rules hold for 26
    assert len(few) == len(many)


def test_operator_acknowledges_an_alert_which_stays_open(operator_api):
    raise_alerts(1)
    alert = Alert.objects.get()
    response = operator_api.post(f"{URL}{alert.pk}/acknowledge/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"] == "token:otto"
    alert.refresh_from_db()
    assert alert.resolved_at is None
    assert alert.acknowledged_at is not None

    # Again: the first acknowledgement stands.
    again = operator_api.post(f"{URL}{alert.pk}/acknowledge/").json()
    assert again["acknowledged_at"] == body["acknowledged_at"]

    # It resolves when its condition stops holding, acknowledged or not.
    report_battery(alert.device, 90)
    evaluate(at(5), values=none)
    alert.refresh_from_db()
    assert alert.resolved_at == at(5)


def test_a_resolved_alert_cannot_be_acknowledged(operator_api):
    [device] = raise_alerts(1)
    report_battery(device, 90)
    evaluate(at(1), values=none)
    alert = Alert.objects.get()
    response = operator_api.post(f"{URL}{alert.pk}/acknowledge/")
    assert response.status_code == 409
    assert response.json()["code"] == "resolved"


def test_viewer_cannot_acknowledge(viewer_api):
    raise_alerts(1)
    alert = Alert.objects.get()
    assert viewer_api.post(f"{URL}{alert.pk}/acknowledge/").status_code == 403
    assert Alert.objects.get().acknowledged_at is None


def test_alerts_cannot_be_written_through_the_api(admin_api):
    raise_alerts(1)
    alert = Alert.objects.get()
    assert admin_api.post(URL, {}).status_code == 405
    assert admin_api.patch(f"{URL}{alert.pk}/", {"severity": "info"}).status_code == 405
    assert admin_api.delete(f"{URL}{alert.pk}/").status_code == 405


def test_anonymous_sees_nothing(client):
    assert client.get(URL).status_code in (401, 403)
