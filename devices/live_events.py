"""One device's live group (fleetportal.live): the device page joins it, and the apps that
change what the page shows emit to it — shadows ("shadow.changed"), monitoring's presence
("presence.changed"), and the registry itself ("device.changed" when a device's status moves or
its certificates change), so the page fetches its parts again without a reload.

The name lives here, in the lowest app that knows devices, so the apps above import it and the
device page's consumer (devices.consumers) joins the same group they emit to."""

from typing import Any

from devices import hooks
from fleetportal import live

DEVICE_CHANGED = "device.changed"


def device_group(device_pk: Any) -> str:
    """The channel-layer group of one device's live pages (the UUID: device_ids may hold ':')."""
    return f"device.{device_pk.hex}"


def device_changed(device_pk: Any, what: str) -> None:
    """Tell the device's open pages that the registry changed it (after the commit, and only
    while a page watches: fleetportal.live drops the rest before they cost anything)."""
    live.emit(device_group(device_pk), what, {"type": DEVICE_CHANGED, "what": what})


def on_devices_transitioned(event: hooks.DevicesTransitioned) -> None:
    for device in event.devices:
        device_changed(device.pk, "status")
