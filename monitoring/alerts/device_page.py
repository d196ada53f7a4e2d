"""The device page's Alerts section: the device's open alerts and its latest resolved ones."""

from devices.pages import DEVICE_PAGE
from fleetportal.pages import Section
from monitoring.models import Alert

SHOWN = 10


def _section(request, device) -> dict:
    # Served by alert_device_raised_idx; the rule comes in the same query.
    alerts = Alert.objects.filter(device=device).select_related("rule")
    return {"alerts": list(alerts.order_by("-raised_at", "-id")[:SHOWN])}


DEVICE_PAGE.add_section(
    Section(
        "alerts",
        "admin/monitoring/device_alerts.html",
        _section,
        permission="monitoring.view_alert",
        order=40,
    )
)
