"""The device page's Alerts section: the device's open alerts and its latest resolved ones.

Whether the device has any alert is asked in the page's own query (an Exists served by
alert_device_raised_idx), so a device that never alerted costs the page no extra query."""

from django.db.models import Exists, OuterRef

from devices.pages import DEVICE_PAGE
from fleetportal.pages import Section
from monitoring.models import Alert

SHOWN = 10


def _has_alerts(queryset):
    return queryset.annotate(has_alerts=Exists(Alert.objects.filter(device=OuterRef("pk"))))


def _section(request, device) -> dict | None:
    if not getattr(device, "has_alerts", True):
        return None
    alerts = Alert.objects.filter(device=device).select_related("rule")
    return {"alerts": list(alerts.order_by("-raised_at", "-id")[:SHOWN])}


DEVICE_PAGE.add_annotation(_has_alerts)
DEVICE_PAGE.add_section(
    Section(
        "alerts",
        "admin/monitoring/device_alerts.html",
        _section,
        permission="monitoring.view_alert",
        order=40,
    )
)
