"""The device list's configuration drift filter (devices.device_list): devices with at least one
key pushed long enough ago and still not applied (shadows.configuration.states decides)."""

from django.db.models import Exists, OuterRef

from devices.device_list import DEVICE_LIST, two_way_filter


def _drifting():
    from shadows.configuration import services

    return Exists(services.drifted().filter(device=OuterRef("pk")))


def register() -> None:
    DEVICE_LIST.add_filter(
        two_way_filter(
            "drift",
            "configuration drift",
            ("yes", "Drifting"),
            ("no", "No drift"),
            _drifting,
            order=65,
        )
    )
