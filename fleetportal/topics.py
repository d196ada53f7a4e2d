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


# Claims reach the portal from the claim broker (fleetportal/broker.py) with who sent them:
# fleetportal/claim/<hex client id>/<claim user>/<request topic>; each reply goes back to that
# one client through fleetportal/claim-reply/<hex client id>/<reply topic>.
CLAIM_REQUEST_PREFIX = "fleetportal/claim/"
CLAIM_REPLY_PREFIX = "fleetportal/claim-reply/"
# A claim certificate's CN and MQTT username: "claim.<template>" ('.' is in no device id).
CLAIM_USER_PREFIX = "claim."


def claim_client(client_id: str) -> str:
    """A client id as the claim topics carry it (hex of its UTF-8: any id fits in one level)."""
    return client_id.encode("utf-8", "surrogatepass").hex()


def claim_request(client_id: str, claim_user: str, request_topic: str) -> str:
    return f"{CLAIM_REQUEST_PREFIX}{claim_client(client_id)}/{claim_user}/{request_topic}"


def claim_reply(client: str, reply_topic: str) -> str:
    """The topic that delivers reply_topic to one claim client (`client` as claim_client gives)."""
    return f"{CLAIM_REPLY_PREFIX}{client}/{reply_topic}"


def claim_filter(request_filter: str) -> str:
    """The bridge's subscription to a claim request topic, from every claim client."""
    return f"{CLAIM_REQUEST_PREFIX}+/+/{request_filter}"


@dataclass(frozen=True)
class Claimant:
    """Who sent a claim request: the client (hex, as the claim topics carry it) and its claim
    certificate's user, "claim.<template>". Replies go to this client alone."""

    client: str
    user: str

    @classmethod
    def of(cls, client_id: str, template: str) -> "Claimant":
        return cls(claim_client(client_id), CLAIM_USER_PREFIX + template)

    @property
    def template(self) -> str:
        return self.user.removeprefix(CLAIM_USER_PREFIX)

    @property
    def client_id(self) -> str:
        """The MQTT client id the device connected with (undecodable bytes escaped)."""
        return bytes.fromhex(self.client).decode("utf-8", "backslashreplace")

    def reply_topic(self, topic: str) -> str:
        return claim_reply(self.client, topic)


# What the broker's per-device rate limit dropped, once a second (mosquitto/fleetportal_limits.c):
# {"seconds": s, "dropped": {"<device id>": n, …}}.
BROKER_THROTTLED = "fleetportal/broker/throttled"

# The broker's own log (`log_dest topic`), at notice level: connections, with client addresses,
# and most disconnections; at error level: session takeovers (fleetportal.bridge.connections).
BROKER_LOG_NOTICE = "$SYS/broker/log/N"
BROKER_LOG_ERROR = "$SYS/broker/log/E"


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
    claimant: Claimant | None = None  # claim requests only
    request_topic: str = ""  # a claim request's own topic ($aws/certificates/…), for replies


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
    if topic.startswith(CLAIM_REQUEST_PREFIX):
        return _claim_route(topic[len(CLAIM_REQUEST_PREFIX) :])
    if topic in (BROKER_LOG_NOTICE, BROKER_LOG_ERROR):
        return Route("broker_log")
    if topic == BROKER_THROTTLED:
        return Route("broker_throttled")
    parts = topic.split("/")
    if len(parts) >= 3 and parts[0] == "devices" and parts[1]:
        return Route("device:" + "/".join(parts[2:]), device_id=parts[1])
    if len(parts) >= 4 and parts[0] == "$aws" and parts[1] == "things" and parts[2]:
        shadow = _shadow_route(parts)
        if shadow is not None:
            return shadow
        return Route("thing:" + "/".join(parts[3:]), device_id=parts[2])
    return None


def _claim_route(tagged: str) -> Route | None:
    """<hex client>/<claim user>/<request topic>, as the claim broker tags a claim request."""
    parts = tagged.split("/", 2)
    if len(parts) != 3:
        return None
    client, user, request = parts
    if not _is_hex(client) or not user.startswith(CLAIM_USER_PREFIX) or user == CLAIM_USER_PREFIX:
        return None
    claimant = Claimant(client, user)
    if request == CREATE_FROM_CSR:
        return Route("create_from_csr", claimant=claimant, request_topic=request)
    if request == CREATE_KEYS:
        return Route("create_keys", claimant=claimant, request_topic=request)
    if request.startswith(PROVISION_PREFIX) and request.endswith(PROVISION_SUFFIX):
        name = request[len(PROVISION_PREFIX) : -len(PROVISION_SUFFIX)]
        if name and "/" not in name:
            return Route("provision", name=name, claimant=claimant, request_topic=request)
    return None


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(c in "0123456789abcdef" for c in text)


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
