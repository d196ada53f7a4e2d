"""Small events for the live pages, sent to channel-layer groups after the change commits.

Services call `emit` inside their transaction. Outside a `coalesced()` block each event is sent
when the transaction commits (one channel-layer call). Inside one — the bridge processing a batch
of device messages in one transaction — only the last event per (group, key) is kept and all of
them go out in one call when the block ends, so a batch of 200 updates costs one round trip to
the channel layer, not 200 (architecture.md §3, "Live pages"). Best effort: a channel layer
that is down is logged and never fails the change that caused the event.

The sends run on one background event loop of the process (its Redis connections are kept),
so neither a request nor the bridge's acks wait for the channel layer (~7 ms per call made
with a fresh loop each time).
"""

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

_state = threading.local()


def emit(group: str, key: str, event: dict[str, Any]) -> None:
    """Send `event` to `group` once the current transaction commits (coalesced per key)."""
    buffer = getattr(_state, "buffer", None)
    if buffer is not None:
        # Registered per event, so a message whose savepoint rolls back takes its event with it.
        transaction.on_commit(lambda: buffer.__setitem__((group, key), event))
    else:
        transaction.on_commit(lambda: send([(group, event)]), robust=True)


@contextmanager
def coalesced() -> Iterator[None]:
    """Collect the events committed inside the block; send the last one per key at its end."""
    _state.buffer = {}
    try:
        yield
    finally:
        buffer, _state.buffer = _state.buffer, None
        if buffer:
            send([(group, event) for (group, _key), event in buffer.items()])


def send(events: list[tuple[str, dict[str, Any]]]) -> Future | None:
    """Hand the events to the background loop; returns at once (the future: for tests)."""
    layer = get_channel_layer()
    if layer is None or not events:
        return None

    async def send_one(group: str, event: dict[str, Any]) -> None:
        async with _in_flight():
            await layer.group_send(group, event)

    async def send_all() -> None:
        await asyncio.gather(*(send_one(group, event) for group, event in events))

    future = asyncio.run_coroutine_threadsafe(send_all(), _loop())
    future.add_done_callback(_log_failure)
    return future


_loop_lock = threading.Lock()
_background: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    global _background
    with _loop_lock:
        if _background is None or _background.is_closed():
            global _semaphore
            _semaphore = None  # bound to the loop that first used it
            _background = asyncio.new_event_loop()
            threading.Thread(target=_background.run_forever, name="live", daemon=True).start()
        return _background


# Sends in flight at once: each holds a Redis connection, and a configuration change can emit
# an event for every device of a group (thousands) — unbounded, Redis refuses connections.
MAX_IN_FLIGHT = 16
_semaphore: asyncio.Semaphore | None = None


def _in_flight() -> asyncio.Semaphore:
    global _semaphore
    if _semaphore is None:  # made on the background loop, the only one that uses it
        _semaphore = asyncio.Semaphore(MAX_IN_FLIGHT)
    return _semaphore


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("live: events not sent to the channel layer: %s", future.exception())
