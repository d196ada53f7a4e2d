"""The device list's "never connected" filter (devices.device_list): devices without a presence
row have never connected since monitoring was installed (monitoring.models.Presence); the
connectivity filter (online / offline) is devices' own, through devices.online."""

from django.db.models import Exists, OuterRef

from devices.device_list import DEVICE_LIST, two_way_filter
from monitoring.models import Presence


def register() -> None:
    # The presence row's primary key is the device: one index probe per device.
    DEVICE_LIST.add_filter(
        two_way_filter(
            "connected",
            "ever connected",
            ("ever", "Connected at least once"),
            ("never", "Never connected"),
            lambda: Exists(Presence.objects.filter(device=OuterRef("pk"))),
            order=25,
        )
    )
