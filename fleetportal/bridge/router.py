"""Which handlers serve which inbound topic. Apps register them in AppConfig.ready().

The router knows no app: devices (and later shadows, firmware, monitoring) name a route kind
from fleetportal.topics.parse and the topic filters the bridge must subscribe to, in one of two
ways:

- `register(kind, handler)` for a *request* (shadow, provisioning, rotation, jobs): the device
  waits for one reply, so one handler serves the kind. A second registration of another handler
  raises RouteConflict naming both, which stops the app's startup.
- `subscribe(kind, handler)` for what devices and the broker *report* (presence, telemetry, the
  broker's log and throttle reports): every subscriber is called, in the order they subscribed.

A kind is one or the other; mixing the two raises RouteConflict as well.
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


class RouteConflict(Exception):
    """Two handlers claim one request kind, or a kind is both requested and subscribed to."""


@dataclass(frozen=True)
class _Handler:
    handler: Handler
    filters: tuple[str, ...]
    isolated: bool
    failure_reply: FailureReply | None = None


_routes: dict[str, tuple[_Handler, ...]] = {}
_exclusive: set[str] = set()  # request kinds (register): one handler each
# What dispatch calls per kind, and the kinds whose every handler is isolated: kept beside
# _routes so the per-message path is two dict lookups.
_callables: dict[str, tuple[Handler, ...]] = {}
_isolated: set[str] = set()
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
    """Serve request `kind` with `handler`, its only handler; the bridge subscribes to
    `topic_filters`. Registering the same handler again replaces its options; another handler
    for the kind raises RouteConflict.

    A handler runs inside the bridge's transaction; it writes its replies with
    fleetportal.outbox.send and raises only for failures that should be retried.
    `isolated`: the handler makes its changes in its own atomic block and turns refusals into
    replies, so the bridge needs no savepoint around it (two fewer queries per message); an
    exception out of it is a bug, and the bridge then replays that batch one message at a time.
    `failure_reply`: what the device is sent when the handler fails for good (the protocol's
    internal error on the request's rejected topic), so a device never waits in silence.
    """
    current = _routes.get(kind, ())
    if current and (kind not in _exclusive or current[0].handler is not handler):
        raise RouteConflict(
            f"{_name(handler)} cannot serve {kind!r}: "
            + (
                f"{_name(current[0].handler)} already serves it, and a request has one handler."
                if kind in _exclusive
                else f"{_names(current)} subscribe to it (router.subscribe), so it is not a "
                "request kind."
            )
        )
    _exclusive.add(kind)
    _set(kind, (_Handler(handler, topic_filters, isolated, failure_reply),))


def subscribe(kind: str, handler: Handler, *topic_filters: str, isolated: bool = False) -> None:
    """Call `handler` too for every message of `kind` (after those subscribed before it); the
    bridge subscribes to `topic_filters`. Subscribing the same handler again replaces its
    filters. For what is reported, never for requests: subscribers send no replies.

    All subscribers of a message run in one savepoint, or in none if every one of them is
    `isolated` (see register): one that raises fails the message for all of them (rolled
    back, logged, acked), as a single handler's failure does.
    """
    if kind in _exclusive:
        raise RouteConflict(
            f"{_name(handler)} cannot subscribe to {kind!r}: it is a request kind, which "
            f"{_name(_routes[kind][0].handler)} serves alone (router.register)."
        )
    current = _routes.get(kind, ())
    entry = _Handler(handler, topic_filters, isolated)
    if any(h.handler is handler for h in current):  # again: it keeps its place in the order
        handlers = tuple(entry if h.handler is handler else h for h in current)
    else:
        handlers = (*current, entry)
    _set(kind, handlers)


def unsubscribe(kind: str, handler: Handler) -> None:
    """Stop calling `handler` for `kind` (tests, and apps that switch a feature off)."""
    if kind not in _exclusive:
        _set(kind, tuple(h for h in _routes.get(kind, ()) if h.handler is not handler))


def unregister(kind: str) -> None:
    """Stop serving `kind` at all, whoever serves or subscribes to it."""
    _exclusive.discard(kind)
    _set(kind, ())


def _set(kind: str, handlers: tuple[_Handler, ...]) -> None:
    if not handlers:
        _routes.pop(kind, None)
        _callables.pop(kind, None)
        _isolated.discard(kind)
        return
    _routes[kind] = handlers
    _callables[kind] = tuple(h.handler for h in handlers)
    if all(h.isolated for h in handlers):
        _isolated.add(kind)
    else:
        _isolated.discard(kind)


def _name(handler: Handler) -> str:
    module = getattr(handler, "__module__", None)
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    if "<locals>" in name:  # a handler made by a factory names itself (shadow_update)
        name = getattr(handler, "__name__", name)
    return f"{module}.{name}" if module else repr(handler)


def _names(handlers: tuple[_Handler, ...]) -> str:
    return ", ".join(_name(h.handler) for h in handlers)


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
    return sorted({f for handlers in _routes.values() for h in handlers for f in h.filters})


def is_isolated(route: topics.Route) -> bool:
    return route.kind in _isolated


def failure_reply(message: InboundMessage) -> tuple[str, dict] | None:
    handlers = _routes.get(message.route.kind, ())
    build = handlers[0].failure_reply if handlers else None
    return build(message) if build is not None else None


def dispatch(message: InboundMessage) -> bool:
    """Run the device hooks and the kind's handlers for one message; False if none serves it."""
    if message.route.device_id:
        for hook in _device_hooks:
            hook(message)
    handlers = _callables.get(message.route.kind)
    if handlers is None:
        return False
    for handler in handlers:
        handler(message)
    return True
