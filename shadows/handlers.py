"""MQTT handlers of the shadows app: $aws/things/{id}/shadow[/name/{name}]/{update,get,delete}.

Registered with the bridge's router from ShadowsConfig.ready; classic and named shadows share a
route kind (fleetportal.topics.parse puts the shadow name in Route.name). Everything else —
validation, replies, rejected documents — is shadows.services.
"""

from fleetportal import topics
from fleetportal.bridge import router
from shadows import services


def register() -> None:
    for operation in topics.SHADOW_OPERATIONS:
        router.register(
            topics.shadow_kind(operation), _handler(operation), *topics.shadow_filters(operation)
        )


def _handler(operation: str) -> router.Handler:
    def handle(message: router.InboundMessage) -> None:
        services.handle_request(
            operation,
            message.device_id,
            message.route.name,
            message.payload,
            now=message.received_at,
        )

    handle.__name__ = f"shadow_{operation}"
    return handle
