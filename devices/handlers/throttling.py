"""The bridge dropped a device's messages over its rate: say so in the device's timeline."""

from devices.choices import EventType
from devices.models import Device, DeviceEvent
from fleetportal.bridge import router


def register() -> None:
    router.on_throttled(record)


def record(dropped: dict[str, int], seconds: float) -> None:
    """One `throttled` event per device and report, with how many messages it lost."""
    devices = Device.objects.filter(device_id__in=list(dropped)).values_list("pk", "device_id")
    DeviceEvent.objects.bulk_create(
        DeviceEvent(
            device_id=pk,
            event_type=EventType.THROTTLED,
            event_data={"dropped_messages": dropped[device_id], "seconds": round(seconds, 1)},
            actor="system",
        )
        for pk, device_id in devices
    )
