"""/api/v1/alert-rules/: roles, validation with the filter's own words, bounds, hostile input."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring.models import AlertRule
from tests.monitoring.alert_helpers import LOW_BATTERY, make_rule

pytestmark = pytest.mark.django_db
URL = "/api/v1/alert-rules/"


def rule_body(**fields):
    return {"name": "low battery", "filter": LOW_BATTERY, "for_seconds": 600, **fields}


def telemetry_body(**fields):
    return {
        "name": "hot",
        "kind": "telemetry",
        "metric": "temperature",
        "op": "gt",
        "threshold": 70,
        "window_seconds": 300,
        **fields,
    }


def test_operator_creates_a_rule_and_is_recorded_as_its_creator(operator_api):
    response = operator_api.post(URL, rule_body(severity="critical"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created_by"] == "token:otto"
    assert body["kind"] == "filter"
    assert body["severity"] == "critical"
    assert AlertRule.objects.get(name="low battery").for_seconds == 600


def test_operator_creates_a_telemetry_rule(operator_api):
    response = operator_api.post(URL, telemetry_body(), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["threshold"] == 70.0


def test_viewer_reads_rules_but_cannot_write_them(viewer_api):
    rule = make_rule()
    assert viewer_api.get(URL).json()["results"][0]["name"] == "low battery"
    assert viewer_api.post(URL, rule_body(name="x"), format="json").status_code == 403
    assert viewer_api.patch(f"{URL}{rule.pk}/", {"enabled": False}).status_code == 403
    assert viewer_api.delete(f"{URL}{rule.pk}/").status_code == 403


def test_operator_edits_and_deletes_a_rule(operator_api):
    rule = make_rule()
    response = operator_api.patch(f"{URL}{rule.pk}/", {"for_seconds": 3600}, format="json")
    assert response.status_code == 200, response.json()
    rule.refresh_from_db()
    assert rule.for_seconds == 3600
    assert operator_api.delete(f"{URL}{rule.pk}/").status_code == 204
    assert not AlertRule.objects.exists()


def test_an_invalid_filter_is_refused_with_the_filters_own_message(operator_api):
    bad = {"all": [LOW_BATTERY, {"field": "reported.battery", "op": "like", "value": 1}]}
    response = operator_api.post(URL, rule_body(filter=bad), format="json")
    assert response.status_code == 400
    assert response.json() == {
        "filter": [
            "filters.all[1].op: unknown operator 'like'; one of eq, ne, in, lt, lte, gt, gte, "
            "exists, prefix"
        ]
    }


def test_a_filter_naming_a_missing_group_is_refused(operator_api):
    body = rule_body(filter={"field": "group", "op": "eq", "value": "nowhere"})
    response = operator_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json() == {"filter": ["filters.value: no group is named 'nowhere'"]}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filter": {}}, "filter"),
        ({"metric": "temperature"}, "metric"),
        ({"for_seconds": 30 * 24 * 3600 + 1}, "for_seconds"),
        ({"for_seconds": -1}, "for_seconds"),
        ({"for_seconds": 2**40}, "for_seconds"),
        ({"name": "x" * 101}, "name"),
        ({"name": ""}, "name"),
        ({"name": "low\x00battery"}, "name"),
        ({"description": "d" * 2001}, "description"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"kind": "magic"}, "kind"),
        ({"webhook_url": "ftp://hooks.example.com/"}, "webhook_url"),
        ({"webhook_url": "https://user:pw@hooks.example.com/"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:8000/"}, "webhook_url"),
        ({"webhook_url": "http://[::1]/"}, "webhook_url"),
        ({"webhook_url": "http://169.254.169.254/latest/meta-data/"}, "webhook_url"),
        ({"webhook_url": "http://localhost/"}, "webhook_url"),
        ({"webhook_url": "http://LOCALHOST./"}, "webhook_url"),
        ({"webhook_url": "http://[::ffff:127.0.0.1]/"}, "webhook_url"),
        ({"webhook_url": "http://10.1.2.3/"}, "webhook_url"),
        ({"webhook_url": "https://hooks.example.com:99999/"}, "webhook_url"),
        ({"webhook_url": "https://h.example.com/" + "a" * 500}, "webhook_url"),
        ({"enabled": "maybe"}, "enabled"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_filter_rules_are_refused_naming_the_field(operator_api, fields, field):
    response = operator_api.post(URL, rule_body(**fields), format="json")
    assert response.status_code == 400, response.json()
    # A field error, or the parser's refusal naming the field (a NUL anywhere in the body).
    assert field in response.json() or f"{field}:" in response.json()["detail"]
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": ""}, "metric"),
        ({"metric": "temp erature"}, "metric"),
        ({"metric": "m" * 65}, "metric"),
        ({"op": "eq"}, "op"),
        ({"op": ""}, "op"),
        ({"threshold": None}, "threshold"),
        ({"threshold": 1e16}, "threshold"),
        ({"threshold": "NaN"}, "threshold"),
        ({"threshold": "Infinity"}, "threshold"),
        ({"window_seconds": 5}, "window_seconds"),
        ({"window_seconds": 8 * 24 * 3600}, "window_seconds"),
        ({"window_seconds": None}, "window_seconds"),
        ({"filter": LOW_BATTERY}, "filter"),
    ],
)
def test_bad_telemetry_rules_are_refused_naming_the_field(operator_api, fields, field):
    response = operator_api.post(URL, telemetry_body(**fields), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()


def test_loopback_webhooks_are_allowed_when_the_setting_says_so(operator_api, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    body = rule_body(webhook_url="http://127.0.0.1:8000/hooks")
    assert operator_api.post(URL, body, format="json").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "x", "filter": {"field": "reported.a\\u0000", "op": "eq", "value": 1}}',
        b'{"name": "x", "filter": {"field": "reported.a", "op": "eq", "value": 1e400}}',
        b'{"name": "x", "for_seconds": 123456789012345678901234567890}',
        b'{"name": "x", "filter": ' + b'{"not": ' * 60 + b"{}" + b"}" * 61,
        b'{"name": "x", "filter": {"all": ['
        + b",".join([b'{"field": "online", "op": "eq", "value": true}'] * 101)
        + b"]}}",
        b"not json",
    ],
)
def test_hostile_bodies_get_a_400_never_a_500(operator_api, body):
    response = operator_api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not AlertRule.objects.exists()


def test_an_oversize_body_is_refused(operator_api, settings):
    body = rule_body(description="d" * (settings.MAX_REQUEST_BODY_BYTES + 1))
    assert operator_api.post(URL, body, format="json").status_code == 413


def test_name_is_unique(operator_api):
    make_rule()
    response = operator_api.post(URL, rule_body(), format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_list_query_count_does_not_grow_with_the_rules(viewer_api):
    make_rule("a")
    with CaptureQueriesContext(connection) as few:
        assert viewer_api.get(URL).status_code == 200
    for n in range(20):
        make_rule(f"r{n}")
    with CaptureQueriesContext(connection) as many:
        assert len(viewer_api.get(URL).json()["results"]) == 21
    assert len(few) == len(many)
