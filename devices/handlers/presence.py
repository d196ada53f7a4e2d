"""last_seen from every inbound device message.

Any inbound message runs the router's device hooks (first-connection activation, last_seen —
batched per bridge batch). The messages themselves are monitoring's: presence
(devices/<id>/presence, monitoring/presence/) and telemetry (devices/<id>/telemetry,
monitoring/telemetry/) subscribe to their topics, and their messages run the same hooks.
"""

from fleetportal.bridge import router


def register() -> None:
    from devices import last_seen

    router.on_device_message(last_seen.touch)
    router.on_batch(last_seen.begin, last_seen.flush, last_seen.end)
