"""The device list's "never connected" filter (devices.device_list): devices without a presence
row have never connected since monitoring was installed (monitoring.models.Presence); the
connectivity filter (online / offline) is devices' own, through devices.online."""

from django.db.models import Exists, OuterRef, Q

from devices.device_list import DEVICE_LIST, BadListFilter, ListFilter
from monitoring.models import Presence


def _condition(value: str) -> Q:
    if value not in ("never", "ever"):
        raise BadListFilter(f"Unknown filter value {value[:40]!r}.")
    # The presence row's primary key is the device: an index probe per device.
    seen = Exists(Presence.objects.filter(device=OuterRef("pk")))
    return ~Q(seen) if value == "never" else Q(seen)


def register() -> None:
    DEVICE_LIST.add_filter(
        ListFilter(
            "connected",
            "ever connected",
            lambda: [("never", "Never connected"), ("ever", "Connected at least once")],
            _condition,
            order=25,
        )
    )
