"""Which handler serves which inbound topic. Apps register handlers in AppConfig.ready().

The router knows no app: devices (and later shadows, firmware) call `register` with a route kind
from fleetportal.topics.parse and the topic filter the bridge must subscribe to.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from fleetportal import topics


@dataclass(frozen=True)
class InboundMessage:
    topic: str
    payload: bytes
    route: topics.Route
    received_at: datetime = field(default_factory=timezone.now)

    @property
    def device_id(self) -> str:
        return self.route.device_id


Handler = Callable[[InboundMessage], None]
DeviceHook = Callable[[InboundMessage], None]

_handlers: dict[str, Handler] = {}
_filters: dict[str, list[str]] = {}
_device_hooks: list[DeviceHook] = []


def register(kind: str, handler: Handler, *topic_filters: str) -> None:
    """Serve route `kind` with `handler`; the bridge subscribes to `topic_filters`.

    A handler runs inside the bridge's transaction; it writes its replies with
    fleetportal.outbox.send and raises only for failures that should be retried.
    """
    _handlers[kind] = handler
    _filters[kind] = list(topic_filters)


def unregister(kind: str) -> None:
    """Stop serving `kind` (tests, and apps that switch a feature off)."""
    _handlers.pop(kind, None)
    _filters.pop(kind, None)


def on_device_message(hook: DeviceHook) -> None:
    """Call `hook` for every inbound message that names a device (presence, last_seen, …)."""
    if hook not in _device_hooks:
        _device_hooks.append(hook)


def subscriptions() -> list[str]:
    return sorted({f for filters in _filters.values() for f in filters})


def handler_for(route: topics.Route) -> Handler | None:
    return _handlers.get(route.kind)


def dispatch(message: InboundMessage) -> bool:
    """Run the device hooks and the handler for one message; False if nothing serves it."""
    if message.route.device_id:
        for hook in _device_hooks:
            hook(message)
    handler = handler_for(message.route)
    if handler is None:
        return False
    handler(message)
    return True
