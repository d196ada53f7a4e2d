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

Only watched groups get events. A page that shows a device live joins its group with `join()`
(the channel layer's group_add, plus a note in Redis that the group is watched, until `leave()`
or the layer's group expiry); every process re-reads the watched groups every few tenths of a
second, and `emit` drops the events of the others before they cost even a commit hook. A
channel-layer send costs ~0.2-0.3 ms of CPU whether anyone listens or not, so sending every
accepted update took a third of a core at 1,000 updates/s (docs/benchmarks-notes.md); of a million
devices only the few on someone's screen are watched. `join()` returns once every process's
view includes the new watch, so a page that reads the current state after it misses no change.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import redis.asyncio as redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

_state = threading.local()


def emit(group: str, key: str, event: dict[str, Any]) -> None:
    """Send `event` to `group` once the current transaction commits (coalesced per key)."""
    if not _may_be_watched(group):
        return  # nobody watched it a moment ago: not even a commit hook for it
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
        watched = await _watched_groups()
        await asyncio.gather(
            *(send_one(group, event) for group, event in events if group in watched)
        )

    future = asyncio.run_coroutine_threadsafe(send_all(), _loop())
    future.add_done_callback(_log_failure)
    return future


_loop_lock = threading.Lock()
_background: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    global _background
    with _loop_lock:
        if _background is None or _background.is_closed():
            global _semaphore, _watched_lock, _watched_client, _refresher
            # Bound to the loop that first used them.
            _semaphore = _watched_lock = _watched_client = _refresher = None
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


# --- who watches which group --------------------------------------------------------------------

# A sorted set: "<group> <channel>" -> when that watch expires (epoch seconds).
WATCHED_KEY = "fleetportal:live:watched"
REFRESH_SECONDS = 0.25


async def join(channel: str, *groups: str) -> None:
    """Add `channel` to `groups` and mark them watched; returns once every sender sees it."""
    layer = get_channel_layer()
    for group in groups:
        await layer.group_add(group, channel)
    expires = time.time() + getattr(layer, "group_expiry", 86400)
    async with _redis() as client:
        await client.zadd(WATCHED_KEY, {_watch(group, channel): expires for group in groups})
    # Every process's view of the watched groups is read again within this time (see
    # _may_be_watched and _watched_groups).
    await asyncio.sleep(REFRESH_SECONDS * 2)


async def leave(channel: str, *groups: str) -> None:
    layer = get_channel_layer()
    for group in groups:
        await layer.group_discard(group, channel)
    async with _redis() as client:
        await client.zrem(WATCHED_KEY, *(_watch(group, channel) for group in groups))


def _watch(group: str, channel: str) -> str:
    return f"{group} {channel}"  # group names hold no space (the channel layer refuses them)


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


_watched: tuple[float, frozenset[str]] = (0.0, frozenset())
_watched_lock: asyncio.Lock | None = None
_watched_client: redis.Redis | None = None


async def _watched_groups() -> frozenset[str]:
    """The watched groups, as read at most REFRESH_SECONDS ago (on the background loop)."""
    global _watched, _watched_lock, _watched_client
    if _watched_lock is None:  # made on the background loop, the only one that uses them
        _watched_lock, _watched_client = asyncio.Lock(), _redis()
    async with _watched_lock:
        read_at, groups = _watched
        if time.monotonic() - read_at > REFRESH_SECONDS:
            read_at, now = time.monotonic(), time.time()
            async with _watched_client.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(WATCHED_KEY, "-inf", now)
                pipe.zrangebyscore(WATCHED_KEY, now, "+inf")
                _, members = await pipe.execute()
            groups = frozenset(m.decode().rsplit(" ", 1)[0] for m in members)
            _watched = (read_at, groups)
        return groups


def _may_be_watched(group: str) -> bool:
    """False only if this process's view, read at most 2 x REFRESH_SECONDS ago, lacks `group`.

    The view is kept fresh by a task on the background loop, started by the first event; until
    it is, every event goes to send(), which filters with a view of its own."""
    read_at, groups = _watched
    if time.monotonic() - read_at <= 2 * REFRESH_SECONDS:
        return group in groups
    _keep_fresh()
    return True


_refresher: Future | None = None
_refresher_lock = threading.Lock()


def _keep_fresh() -> None:
    global _refresher
    with _refresher_lock:
        if _refresher is None or _refresher.done():
            _refresher = asyncio.run_coroutine_threadsafe(_refresh_forever(), _loop())


async def _refresh_forever() -> None:
    failing = False
    while True:
        try:
            await _watched_groups()
            failing = False
        except Exception as exc:  # Redis away: the view goes stale and events pass to send()
            if not failing:
                log.warning("live: cannot read the watched groups: %s", exc)
            failing = True
        await asyncio.sleep(REFRESH_SECONDS / 2)
