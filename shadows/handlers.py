"""MQTT handlers of the shadows app: $aws/things/{id}/shadow[/name/{name}]/{update,get,delete}.

Registered with the bridge's router from ShadowsConfig.ready; classic and named shadows share a
route kind (fleetportal.topics.parse puts the shadow name in Route.name). Everything else —
validation, replies, rejected documents — is shadows.services.
"""

from fleetportal import topics
from fleetportal.bridge import replies, router
from shadows import batch


def register() -> None:
    router.on_batch(batch.begin, batch.invalidate, batch.end)
    for operation in topics.SHADOW_OPERATIONS:
        router.register(
            topics.shadow_kind(operation),
            _handler(operation),
            *topics.shadow_filters(operation),
            isolated=True,  # services.handle_request: own atomic block, refusals are replies
            failure_reply=replies.internal_error(500),
        )


def _handler(operation: str) -> router.Handler:
    def handle(message: router.InboundMessage) -> None:
        batch.handle(
            operation,
            message.device_id,
            message.route.name,
            message.payload,
            now=message.received_at,
            redelivered=message.redelivered,
        )

    handle.__name__ = f"shadow_{operation}"
    return handle
