"""Telemetry's counters in Redis, for /metrics and the device page (shared interface, issue 14):

- `fp:metrics:telemetry_messages`, `fp:metrics:telemetry_points`, `fp:metrics:telemetry_dropped`:
  totals since Redis started, INCRBY once per bridge batch after its commit;
- the hash `fp:telemetry:dropped`: device_id → values dropped (bad input and rate limit).

Redis being down costs the counts of that batch (logged), never the points.
"""

import logging
from collections import Counter
from functools import cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

MESSAGES = "fp:metrics:telemetry_messages"
POINTS = "fp:metrics:telemetry_points"
DROPPED = "fp:metrics:telemetry_dropped"
DROPPED_BY_DEVICE = "fp:telemetry:dropped"
# Put before every key: "" in the portal (the names above are the interface /metrics reads);
# each test sets its own, as Redis outlives a test and parallel test workers share it.
namespace = ""


def key(name: str) -> str:
    return namespace + name


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def add(messages: int, points: int, dropped: Counter) -> None:
    """Add one batch's counts (`dropped`: device_id → values dropped), one round trip."""
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incrby(key(MESSAGES), messages)
        pipe.incrby(key(POINTS), points)
        total = sum(dropped.values())
        if total:
            pipe.incrby(key(DROPPED), total)
            for device_id, count in dropped.items():
                pipe.hincrby(key(DROPPED_BY_DEVICE), device_id, count)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("telemetry: counters not written (Redis: %s)", exc)


def dropped_for(device_id: str) -> int:
    """Values dropped from this device since the counters began (the device page)."""
    try:
        return int(_redis().hget(key(DROPPED_BY_DEVICE), device_id) or 0)
    except redis.RedisError:
        return 0
