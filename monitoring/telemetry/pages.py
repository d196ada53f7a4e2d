"""The telemetry chart on the device's admin page: a section on devices.pages.DEVICE_PAGE
(devices does not import monitoring), drawn in the browser by uPlot from the aggregates API."""

from django.urls import reverse

from devices.pages import DEVICE_PAGE
from fleetportal.pages import Section
from monitoring.telemetry import counters
from monitoring.telemetry.queries import PERIODS

DEFAULT_PERIOD = "24h"


def _context(request, device) -> dict:
    return {
        "telemetry_url": reverse("telemetry-aggregates", args=[device.device_id]),
        "periods": list(PERIODS),
        "default_period": DEFAULT_PERIOD,
        "dropped": counters.dropped_for(device.device_id),
    }


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "telemetry",
            "admin/monitoring/device_telemetry.html",
            _context,
            permission="devices.view_device",
            order=40,
        )
    )
