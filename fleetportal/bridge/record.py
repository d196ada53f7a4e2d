"""How far behind the portal's record of device messages runs: each consumer of device messages
(a bridge partition, the AWS SQS consumer) says up to which receive time everything it took has
been committed, and `lag()` is how far the slowest one trails the clock.

A message's effects, last_seen among them, are in the database only once the consumer that took
it has committed its batch. While a bridge works through a backlog (a mass reboot's burst) or is
down, the devices it serves seem silent for as long. Whoever judges silence (the rollout health
check's "back online after reporting") allows for this lag, instead of failing devices whose
messages are still queued. Other writers of last_seen (the HTTP device API writes at once) say
nothing about a lagging bridge, which is why the consumers report here rather than the newest
last_seen being read.

Kept in one Redis hash (settings.MESSAGE_RECORD_KEY), source -> "through written" (epoch
seconds). A consumer writes at most every WRITE_SECONDS, after its commit; when it finds nothing
waiting it is caught up and says so with the current time; a consumer that stops removes its
source. A source not written for STALE_SECONDS (killed, or a partition no longer run) is left
out and removed; with no source left the lag is unknown (None) and nothing is judged on it.
"""

import logging
import time
from datetime import datetime, timedelta
from functools import cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

WRITE_SECONDS = 0.5
STALE_SECONDS = 600.0


class Reporter:
    """One consumer's reports: `caught_up()` when nothing waits, `reached(t)` after a commit."""

    def __init__(self, source: str):
        self.source = source
        self._written_at = -WRITE_SECONDS

    def reached(self, received_at: datetime) -> None:
        """Every message received up to `received_at` is committed."""
        self._write(received_at.timestamp())

    def caught_up(self) -> None:
        """Nothing taken is left uncommitted: the record reaches now."""
        self._write(time.time())

    def leave(self) -> None:
        """The consumer stops: its record no longer holds anyone back."""
        _forget([self.source])

    def _write(self, through: float) -> None:
        now = time.monotonic()
        if now - self._written_at < WRITE_SECONDS:
            return
        self._written_at = now
        try:
            _redis().hset(settings.MESSAGE_RECORD_KEY, self.source, f"{through!r} {time.time()!r}")
        except redis.RedisError as exc:
            log.warning("message record: %s not written (%s)", self.source, exc)


def lag() -> timedelta | None:
    """How far the slowest consumer's record trails the clock (zero when all are caught up);
    None when no consumer has reported lately or Redis cannot say."""
    try:
        sources = _redis().hgetall(settings.MESSAGE_RECORD_KEY)
    except redis.RedisError as exc:
        log.warning("message record: unreadable (%s)", exc)
        return None
    now = time.time()
    behind, stale = [], []
    for source, value in sources.items():
        through, written = (float(part) for part in value.split())
        if now - written > STALE_SECONDS:
            stale.append(source)
        else:
            behind.append(max(now - through, 0.0))
    if stale:
        _forget(stale)
    if not behind:
        return None
    # A caught-up consumer writes every WRITE_SECONDS: less than two of them is no lag at all.
    slowest = max(behind)
    return timedelta(seconds=slowest if slowest >= 2 * WRITE_SECONDS else 0)


def reaches(now: datetime) -> datetime | None:
    """The moment the record reaches on `now`'s clock (`now` minus the lag); None: unknown."""
    behind = lag()
    return None if behind is None else now - behind


def _forget(sources: list) -> None:
    try:
        _redis().hdel(settings.MESSAGE_RECORD_KEY, *sources)
    except redis.RedisError as exc:
        log.warning("message record: stale sources not removed (%s)", exc)


def reset() -> None:
    """Forget every source (tests)."""
    _redis().delete(settings.MESSAGE_RECORD_KEY)


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1, health_check_interval=30
    )
