"""The alerts' admin pages: rules edited with the same rules as the API, alerts acknowledged by
operators only, deliveries visible, the device page's Alerts section."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from monitoring.alerts.evaluation import evaluate
from monitoring.models import Alert, AlertRule, WebhookDelivery
from tests.conftest import make_device
from tests.monitoring.alert_helpers import at, make_rule, report_battery

pytestmark = pytest.mark.django_db


def none(metric, window, now):
    return {}


def raise_alerts(devices: int, prefix: str = "d", **rule_fields) -> None:
    make_rule(f"rule-{prefix}", for_seconds=0, **rule_fields)
    for n in range(devices):
        report_battery(make_device(f"{prefix}-{n}"), 5)
    evaluate(at(0), values=none)


def rule_form(**fields) -> dict:
    return {
        "name": "low battery",
        "description": "",
        "kind": "filter",
        "severity": "warning",
        "enabled": "on",
        "filter": '{"field": "reported.battery", "op": "lt", "value": 15}',
        "metric": "",
        "op": "",
        "threshold": "",
        "window_seconds": "",
        "for_seconds": "600",
        "webhook_url": "",
        **fields,
    }


def test_operator_adds_a_rule_in_the_admin(client, operator):
    client.force_login(operator)
    response = client.post(reverse("admin:monitoring_alertrule_add"), rule_form())
    assert response.status_code == 302
    assert AlertRule.objects.get().created_by == "otto"


def test_the_admin_refuses_an_invalid_filter_with_its_message(client, operator):
    client.force_login(operator)
    form = rule_form(filter='{"field": "colour", "op": "eq", "value": "red"}')
    response = client.post(reverse("admin:monitoring_alertrule_add"), form)
    assert response.status_code == 200
    assert "filters.field: unknown field &#x27;colour&#x27;" in response.content.decode()
    assert not AlertRule.objects.exists()


def test_viewer_cannot_add_rules(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("admin:monitoring_alertrule_add")).status_code == 403


def test_operator_acknowledges_alerts_with_the_admin_action(client, operator):
    raise_alerts(3)
    client.force_login(operator)
    chosen = list(Alert.objects.values_list("pk", flat=True)[:2])
    response = client.post(
        reverse("admin:monitoring_alert_changelist"),
        {"action": "acknowledge", "_selected_action": chosen},
    )
    assert response.status_code == 302
    acknowledged = Alert.objects.filter(acknowledged_at__isnull=False)
    assert sorted(acknowledged.values_list("pk", flat=True)) == sorted(chosen)
    assert set(acknowledged.values_list("acknowledged_by", flat=True)) == {"otto"}


def test_viewer_gets_no_acknowledge_action(client, viewer):
    raise_alerts(1)
    client.force_login(viewer)
    page = client.get(reverse("admin:monitoring_alert_changelist"))
    assert page.status_code == 200
    assert "Acknowledge the selected" not in page.content.decode()


@pytest.mark.parametrize(
    "name", ["admin:monitoring_alert_changelist", "admin:monitoring_webhookdelivery_changelist"]
)
def test_changelists_query_count_does_not_grow(client, operator, name):
    raise_alerts(1, "a", webhook_url="https://hooks.example.com/a")
    client.force_login(operator)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(name)).status_code == 200
    raise_alerts(20, "b", webhook_url="https://hooks.example.com/b")
    assert WebhookDelivery.objects.count() == 1 + 21 + 20  # both rules hold for the new ones
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse(name)).status_code == 200
    assert len(few) == len(many)


def test_the_device_page_shows_its_alerts(client, viewer):
    raise_alerts(1)
    client.force_login(viewer)
    device = Alert.objects.get().device
    page = client.get(reverse("admin:devices_device_change", args=[device.pk])).content.decode()
    assert 'id="device-alerts"' in page
    assert "rule-d" in page


def test_a_device_without_alerts_has_no_alerts_section(client, viewer):
    device = make_device("quiet")
    client.force_login(viewer)
    page = client.get(reverse("admin:devices_device_change", args=[device.pk])).content.decode()
    assert 'id="device-alerts"' not in page
