"""The device list's configuration drift filter (devices.device_list): devices with at least one
key pushed long enough ago and still not applied (shadows.configuration.states decides)."""

from django.db.models import Exists, OuterRef, Q

from devices.device_list import DEVICE_LIST, BadListFilter, ListFilter


def _condition(value: str) -> Q:
    from shadows.configuration import services

    if value not in ("yes", "no"):
        raise BadListFilter(f"Unknown filter value {value[:40]!r}.")
    drifting = Exists(services.drifted().filter(device=OuterRef("pk")))
    return Q(drifting) if value == "yes" else ~Q(drifting)


def register() -> None:
    DEVICE_LIST.add_filter(
        ListFilter(
            "drift",
            "configuration drift",
            lambda: [("yes", "Drifting"), ("no", "No drift")],
            _condition,
            order=65,
        )
    )
