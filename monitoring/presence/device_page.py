"""The device page's presence and health (monitoring.presence.health), on its Overview tab: a
section on devices.pages.DEVICE_PAGE (devices does not import monitoring). Its part is fetched
again when presence changes ({"type": "presence.changed"} to the device's live group)."""

from devices.pages import DEVICE_PAGE
from fleetportal.pages import Section
from monitoring.presence.choices import PresenceReason
from monitoring.presence.health import device_health


def _context(request, device) -> dict:
    health = device_health(device.device_id)
    reason = health.presence_reason
    return {
        "health": health,
        "reason_label": PresenceReason(reason).label if reason in PresenceReason.values else reason,
    }


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "presence",
            "admin/monitoring/device_presence.html",
            _context,
            permission="monitoring.view_presence",
            order=5,
            tab="overview",
        )
    )
