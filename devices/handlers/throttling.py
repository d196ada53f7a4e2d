"""The broker or the bridge dropped a device's messages over its rate: say so in the device's
timeline. The broker's limit (mosquitto/fleetportal_limits.c) reports once a second on
fleetportal/broker/throttled; the bridge's own throttle, the second line, through the router."""

import logging

import orjson

from devices.choices import EventType
from devices.models import Device, DeviceEvent
from fleetportal import topics
from fleetportal.bridge import router
from fleetportal.bridge.router import InboundMessage

logger = logging.getLogger(__name__)


def register() -> None:
    router.on_throttled(record)
    router.subscribe("broker_throttled", on_broker_report, topics.BROKER_THROTTLED)


def on_broker_report(message: InboundMessage) -> None:
    try:
        report = orjson.loads(message.payload)
        dropped = {
            str(device_id): int(count) for device_id, count in dict(report["dropped"]).items()
        }
        seconds = float(report["seconds"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("Unreadable throttle report from the broker: %r", message.payload[:200])
        return
    if dropped:
        record(dropped, seconds)


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
