"""MQTT handlers: presence, for now only as proof that a device is connected.

Any inbound message runs the router's device hooks (first-connection activation, last_seen —
batched per bridge batch), so this handler has nothing more to do yet. Telemetry
(`devices/<id>/telemetry`) is stored by monitoring.telemetry, which subscribes to it; its
messages run the same device hooks.
"""

from fleetportal import topics
from fleetportal.bridge import router

PRESENCE = "presence"


def register() -> None:
    from devices import last_seen

    router.on_device_message(last_seen.touch)
    router.on_batch(last_seen.begin, last_seen.flush, last_seen.end)
    router.subscribe("device:" + PRESENCE, _seen, topics.device_filter(PRESENCE))


def _seen(message: router.InboundMessage) -> None:
    """The device hooks already ran in router.dispatch."""
