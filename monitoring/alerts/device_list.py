"""The device list's open alerts: a column with each listed device's count and a filter on
"has an open alert" (devices.device_list, which devices offers for apps above it).

The count is a correlated subquery in the list's select: PostgreSQL runs it only for the page's
rows, each an index scan of alert_device_raised_idx; the filter is an EXISTS on the same index."""

from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from devices.device_list import DEVICE_LIST, ListColumn, two_way_filter
from fleetportal import console
from monitoring.models import Alert


def _open_alerts():
    return Alert.objects.filter(device=OuterRef("pk"), resolved_at__isnull=True)


def _annotate(devices):
    counted = _open_alerts().order_by().values("device").annotate(n=Count("*")).values("n")
    return devices.annotate(
        open_alerts=Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
    )


def _cell(device):
    count = device.open_alerts
    return console.badge("open", f"{count} open") if count else "—"


def register() -> None:
    DEVICE_LIST.add_column(ListColumn("open_alerts", "alerts", _annotate, _cell, order=50))
    DEVICE_LIST.add_filter(
        two_way_filter(
            "open_alert",
            "open alert",
            ("yes", "Has an open alert"),
            ("no", "No open alert"),
            lambda: Exists(_open_alerts()),
            order=70,
        )
    )
