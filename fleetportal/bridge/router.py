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
    # The broker delivered it before and got no ack (MQTT DUP): it may have been applied by a
    # transaction that committed just before a crash. Handlers use it to detect replays.
    redelivered: bool = False

    @property
    def device_id(self) -> str:
        return self.route.device_id


Handler = Callable[[InboundMessage], None]
DeviceHook = Callable[[InboundMessage], None]
# The reply a request gets when its handler fails: (topic, payload), or None for no reply.
FailureReply = Callable[[InboundMessage], tuple[str, dict] | None]

_handlers: dict[str, Handler] = {}
_failure_replies: dict[str, FailureReply] = {}
_isolated: set[str] = set()
_filters: dict[str, list[str]] = {}
_device_hooks: list[DeviceHook] = []
_batch_hooks: list[tuple[Callable, Callable, Callable]] = []
ThrottleHook = Callable[[dict[str, int], float], None]
_throttle_hooks: list[ThrottleHook] = []


def register(
    kind: str,
    handler: Handler,
    *topic_filters: str,
    isolated: bool = False,
    failure_reply: FailureReply | None = None,
) -> None:
    """Serve route `kind` with `handler`; the bridge subscribes to `topic_filters`.

    A handler runs inside the bridge's transaction; it writes its replies with
    fleetportal.outbox.send and raises only for failures that should be retried.
    `isolated`: the handler makes its changes in its own atomic block and turns refusals into
    replies, so the bridge needs no savepoint around it (two fewer queries per message); an
    exception out of it is a bug, and the bridge then replays that batch one message at a time.
    `failure_reply`: what the device is sent when the handler fails for good (the protocol's
    internal error on the request's rejected topic), so a device never waits in silence.
    """
    _handlers[kind] = handler
    _filters[kind] = list(topic_filters)
    if failure_reply is not None:
        _failure_replies[kind] = failure_reply
    else:
        _failure_replies.pop(kind, None)
    if isolated:
        _isolated.add(kind)
    else:
        _isolated.discard(kind)


def unregister(kind: str) -> None:
    """Stop serving `kind` (tests, and apps that switch a feature off)."""
    _handlers.pop(kind, None)
    _filters.pop(kind, None)
    _failure_replies.pop(kind, None)
    _isolated.discard(kind)


def on_device_message(hook: DeviceHook) -> None:
    """Call `hook` for every inbound message that names a device (presence, last_seen, …)."""
    if hook not in _device_hooks:
        _device_hooks.append(hook)


def remove_device_hook(hook: DeviceHook) -> None:
    if hook in _device_hooks:
        _device_hooks.remove(hook)


def on_batch(
    begin: Callable[[list[InboundMessage]], None],
    flush: Callable[[], None],
    end: Callable[[], None],
) -> None:
    """Let an app batch its writes while the bridge handles many messages in one transaction.

    `begin(messages)` when a batch starts (inside its transaction), `flush()` before a handler
    that is not `isolated` runs and before the commit (write what is queued; forget cached
    rows), `end()` afterwards whatever happened."""
    if (begin, flush, end) not in _batch_hooks:
        _batch_hooks.append((begin, flush, end))


def begin_batch(messages: list[InboundMessage]) -> None:
    for begin, _flush, _end in _batch_hooks:
        begin(messages)


def flush_batch() -> None:
    for _begin, flush, _end in _batch_hooks:
        flush()


def end_batch() -> None:
    for _begin, _flush, end in _batch_hooks:
        end()


def on_throttled(hook: ThrottleHook) -> None:
    """Call `hook(dropped_by_device, seconds)` when the bridge dropped messages over the
    per-device rate (fleetportal.bridge.throttle), inside a transaction of the bridge's."""
    if hook not in _throttle_hooks:
        _throttle_hooks.append(hook)


def report_throttled(dropped: dict[str, int], seconds: float) -> None:
    for hook in _throttle_hooks:
        hook(dropped, seconds)


def subscriptions() -> list[str]:
    return sorted({f for filters in _filters.values() for f in filters})


def is_isolated(route: topics.Route) -> bool:
    return route.kind in _isolated


def failure_reply(message: InboundMessage) -> tuple[str, dict] | None:
    build = _failure_replies.get(message.route.kind)
    return build(message) if build is not None else None


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
