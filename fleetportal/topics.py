"""The only place that builds and parses MQTT topic strings (device-protocol.md).

Builders return the exact topic; `parse` turns an inbound topic into a Route that the bridge's
router dispatches on.
"""

from dataclasses import dataclass

# device-protocol.md §3.1 — fleet provisioning (no thing name in the topic).
CREATE_FROM_CSR = "$aws/certificates/create-from-csr/json"
CREATE_KEYS = "$aws/certificates/create/json"
PROVISION_PREFIX = "$aws/provisioning-templates/"
PROVISION_SUFFIX = "/provision/json"


# The broker's own log at notice level (`log_dest topic`): connections, with client addresses.
BROKER_LOG_NOTICE = "$SYS/broker/log/N"


def provision(template_name: str) -> str:
    return f"{PROVISION_PREFIX}{template_name}{PROVISION_SUFFIX}"


def accepted(request_topic: str) -> str:
    return f"{request_topic}/accepted"


def rejected(request_topic: str) -> str:
    return f"{request_topic}/rejected"


def device_topic(device_id: str, name: str) -> str:
    """Our own topics beside AWS's: devices/{device_id}/telemetry, /presence, /certificates/…"""
    return f"devices/{device_id}/{name}"


def device_filter(name: str) -> str:
    """The bridge's subscription to one of our topics for every device: devices/+/<name>."""
    return f"devices/+/{name}"


# Certificate rotation and expiry (devices/{device_id}/certificates/...).
CERTIFICATES_ROTATE = "certificates/rotate"
CERTIFICATES_CONFIRM = "certificates/confirm"


def certificates_expiring(device_id: str) -> str:
    return device_topic(device_id, "certificates/expiring")


def things_prefix(device_id: str) -> str:
    return f"$aws/things/{device_id}/"


# Device shadows (device-protocol.md §1.2). The classic shadow has the name "".
SHADOW_OPERATIONS = ("update", "get", "delete")


def shadow_prefix(device_id: str, name: str = "") -> str:
    """P = $aws/things/{thing}/shadow, or …/shadow/name/{name} for a named shadow."""
    base = f"$aws/things/{device_id}/shadow"
    return f"{base}/name/{name}" if name else base


def shadow_topic(device_id: str, name: str, operation: str, reply: str = "") -> str:
    """P/{operation}, or P/{operation}/{reply} (accepted, rejected, delta, documents)."""
    topic = f"{shadow_prefix(device_id, name)}/{operation}"
    return f"{topic}/{reply}" if reply else topic


def shadow_filters(operation: str) -> list[str]:
    """The bridge's subscriptions to one shadow request, classic and named, for every device."""
    return [f"$aws/things/+/shadow/{operation}", f"$aws/things/+/shadow/name/+/{operation}"]


def shadow_kind(operation: str) -> str:
    """The route kind of a shadow request: classic and named shadows share it (name differs)."""
    return f"thing:shadow/{operation}"


@dataclass(frozen=True)
class Route:
    """What an inbound topic means: which handler (`kind`), for which device, with which args."""

    kind: str
    device_id: str = ""
    name: str = ""  # template name, shadow name, certificate sub-topic, …


def device_of(topic: str) -> str:
    """The device a device topic names ("" for claim, provisioning and broker topics); cheap
    enough for every message on arrival (the bridge's throttle)."""
    if topic.startswith("devices/"):
        parts = topic.split("/", 2)
    elif topic.startswith("$aws/things/"):
        parts = topic.split("/", 3)[1:]
    else:
        return ""
    return parts[1] if len(parts) == 3 else ""


def parse(topic: str) -> Route | None:
    """The route of a request topic the portal serves, or None for anything else."""
    if topic == CREATE_FROM_CSR:
        return Route("create_from_csr")
    if topic == CREATE_KEYS:
        return Route("create_keys")
    if topic == BROKER_LOG_NOTICE:
        return Route("broker_log")
    if topic.startswith(PROVISION_PREFIX) and topic.endswith(PROVISION_SUFFIX):
        name = topic[len(PROVISION_PREFIX) : -len(PROVISION_SUFFIX)]
        return Route("provision", name=name) if name and "/" not in name else None
    parts = topic.split("/")
    if len(parts) >= 3 and parts[0] == "devices" and parts[1]:
        return Route("device:" + "/".join(parts[2:]), device_id=parts[1])
    if len(parts) >= 4 and parts[0] == "$aws" and parts[1] == "things" and parts[2]:
        shadow = _shadow_route(parts)
        if shadow is not None:
            return shadow
        return Route("thing:" + "/".join(parts[3:]), device_id=parts[2])
    return None


def _shadow_route(parts: list[str]) -> Route | None:
    """$aws/things/{id}/shadow/name/{name}/{op} -> Route("thing:shadow/{op}", id, name); a named
    topic with an empty name is left as a plain thing route, which nothing serves."""
    named = len(parts) == 7 and parts[3] == "shadow" and parts[4] == "name" and parts[5]
    if named and parts[6] in SHADOW_OPERATIONS:
        return Route(shadow_kind(parts[6]), device_id=parts[2], name=parts[5])
    return None


def filter_for_device(topic_filter: str, device_id: str) -> str | None:
    """A bridge filter narrowed to one device (its device `+` replaced), or None if the filter
    names no device (claim and provisioning topics).

    A partitioned bridge subscribes to these explicit filters for the devices it owns
    (architecture.md §3): `$share` does not deliver `$aws/…` topics on Mosquitto 2.0.11 and
    breaks per-device order (device-protocol.md §7.11).
    """
    parts = topic_filter.split("/")
    if len(parts) >= 3 and parts[0] == "devices" and parts[1] == "+":
        index = 1
    elif len(parts) >= 4 and parts[:2] == ["$aws", "things"] and parts[2] == "+":
        index = 2
    else:
        return None
    return "/".join([*parts[:index], device_id, *parts[index + 1 :]])
