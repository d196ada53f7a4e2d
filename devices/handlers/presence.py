"""MQTT handlers: telemetry, for now only as proof that a device is connected; last_seen.

Any inbound message runs the router's device hooks (first-connection activation, last_seen —
batched per bridge batch). Presence messages (devices/<id>/presence) are monitoring's
(monitoring/presence/handlers.py). Telemetry storage arrives with the monitoring app; until then
its payloads are acknowledged and not kept.
"""

from fleetportal import topics
from fleetportal.bridge import router

TELEMETRY = "telemetry"


def register() -> None:
    from devices import last_seen

    router.on_device_message(last_seen.touch)
    router.on_batch(last_seen.begin, last_seen.flush, last_seen.end)
    router.subscribe("device:" + TELEMETRY, _seen, topics.device_filter(TELEMETRY))


def _seen(message: router.InboundMessage) -> None:
    """The device hooks already ran in router.dispatch."""
