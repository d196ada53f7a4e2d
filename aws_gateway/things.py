"""How a device looks as a thing on AWS IoT Core, and back: names and attributes within AWS's
limits (CreateThing's patterns, 50 attributes for a typed thing). Pure functions, no AWS calls.

A thing's name is its device id (both are 1-128 of [a-zA-Z0-9:_-]), so the IoT policy's
`${iot:Connection.Thing.ThingName}` is the device id, as `%u` is in the Mosquitto ACL. A thing
type is the device type and a thing group the static group, with every character AWS refuses
replaced by `_`. Attribute values may hold only [a-zA-Z0-9_.,@/:#=[]-] (no spaces): other
characters become `_` on AWS; the portal keeps the exact values.
"""

from __future__ import annotations

import re
from typing import Any

from devices.choices import DeviceStatus
from devices.models import Device

NAME_REFUSED = re.compile(r"[^a-zA-Z0-9:_-]")
VALUE_REFUSED = re.compile(r"[^a-zA-Z0-9_.,@/:#=\[\]-]")
NAME_MAX, VALUE_MAX = 128, 800
# The thing type's searchable attributes (AWS allows three).
SEARCHABLE = ["serialNumber", "model", "firmwareVersion"]
# Device fields a thing carries as attributes, by attribute name.
ATTRIBUTE_FIELDS = {
    "deviceName": "device_name",
    "manufacturer": "manufacturer",
    "model": "model",
    "serialNumber": "serial_number",
    "firmwareVersion": "firmware_version",
    "hardwareVersion": "hardware_version",
}
# The device's lifecycle status: "decommissioned" marks a disabled thing.
STATUS_ATTRIBUTE = "status"
# Things without a thing type are imported as devices of this type.
UNTYPED = "untyped"


def aws_name(name: str) -> str:
    """A thing type or thing group name AWS accepts for a portal name."""
    return NAME_REFUSED.sub("_", name)[:NAME_MAX] or "_"


def aws_value(value: str) -> str:
    return VALUE_REFUSED.sub("_", value)[:VALUE_MAX]


def thing_name(device: Device) -> str:
    return device.device_id


def thing_type_name(device_type: str) -> str:
    return aws_name(device_type)


def attributes(device: Device) -> dict[str, str]:
    """The thing's attributes for the device; an empty value removes the attribute on UpdateThing
    (with merge), so a field the operator cleared is cleared on AWS too."""
    found = {name: aws_value(getattr(device, field)) for name, field in ATTRIBUTE_FIELDS.items()}
    found[STATUS_ATTRIBUTE] = device.status
    return found


def create_attributes(device: Device) -> dict[str, str]:
    """CreateThing's attributes: the non-empty ones."""
    return {name: value for name, value in attributes(device).items() if value}


def differs(device: Device, described: dict[str, Any]) -> bool:
    """Whether the thing DescribeThing returned needs an UpdateThing to match the device."""
    current = described.get("attributes") or {}
    wanted = attributes(device)
    if described.get("thingTypeName") != thing_type_name(device.device_type):
        return True
    return any(current.get(name, "") != value for name, value in wanted.items())


def device_fields(thing: dict[str, Any]) -> dict[str, Any]:
    """Registration fields for a thing ListThings returned (import): its attributes back into
    the device's fields; attributes the portal does not map go into metadata."""
    found = dict(thing.get("attributes") or {})
    fields: dict[str, Any] = {
        "device_id": thing["thingName"],
        "device_type": thing.get("thingTypeName") or UNTYPED,
    }
    for name, field in ATTRIBUTE_FIELDS.items():
        value = found.pop(name, "")
        if value:
            fields[field] = value
    found.pop(STATUS_ATTRIBUTE, None)
    fields["metadata"] = found
    return fields


def is_decommissioned_attribute(thing: dict[str, Any]) -> bool:
    return (thing.get("attributes") or {}).get(STATUS_ATTRIBUTE) == DeviceStatus.DECOMMISSIONED
