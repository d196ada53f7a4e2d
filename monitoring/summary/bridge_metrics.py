"""The bridge's figures for /metrics: counted in the bridge process, added to Redis.

The bridge is a process of its own and /metrics is served by the web, so the bridge's batch
hooks (fleetportal.bridge.router.on_batch) count messages, batches, batch sizes and batch
latency in memory, and add them to one Redis hash (KEY) at most every METRICS_PUSH_MS — one
pipelined round trip a second under load, none while idle. Histograms are kept as one counter
per bucket (not cumulative); /metrics adds them up. Redis being away costs nothing but the
figures: they stay in memory until a push succeeds, and a batch never fails for them.

Latency is the batch's handling time, from `begin` (messages taken, transaction open) to `end`
(every handler ran and the batched writes flushed, just before the commit).
"""

import logging
import threading
import time
from functools import cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

KEY = "fp:metrics:bridge"
SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def bucket(value: float, bounds: tuple[float, ...]) -> str:
    """The field of the smallest bucket holding `value` ("+Inf" past the last)."""
    return next((str(b) for b in bounds if value <= b), "+Inf")


class BatchCounters:
    """What the batches since the last push added (one per bridge process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, float] = {}
        self.started = 0.0
        self.size: int | None = None  # None: no batch begun (another app's begin failed first)
        self.pushed_at = 0.0
        self.failing = False

    def begin(self, messages: list) -> None:
        self.started, self.size = time.perf_counter(), len(messages)

    def flush(self) -> None:
        """Nothing to write per flush: the figures are the whole batch's."""

    def end(self) -> None:
        if self.size is None:
            return
        seconds, size, self.size = time.perf_counter() - self.started, self.size, None
        with self.lock:
            add = self.pending
            for field, amount in (
                ("messages_total", size),
                ("batches_total", 1),
                ("size_sum", size),
                ("seconds_sum", seconds),
                ("size_le:" + bucket(size, SIZE_BUCKETS), 1),
                ("seconds_le:" + bucket(seconds, SECONDS_BUCKETS), 1),
            ):
                add[field] = add.get(field, 0) + amount
        if time.monotonic() - self.pushed_at >= settings.METRICS_PUSH_MS / 1000:
            self.push()

    def push(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, {}
        if not pending:
            return
        try:
            pipe = _redis().pipeline(transaction=False)
            for field, amount in pending.items():
                if isinstance(amount, float):
                    pipe.hincrbyfloat(KEY, field, amount)
                else:
                    pipe.hincrby(KEY, field, amount)
            pipe.execute()
        except Exception as exc:  # figures never fail a batch
            with self.lock:  # kept for the next push
                for field, amount in pending.items():
                    self.pending[field] = self.pending.get(field, 0) + amount
            if not self.failing:
                log.warning("metrics: bridge figures not added to Redis: %s", exc)
            self.failing = True
        else:
            self.failing = False
        self.pushed_at = time.monotonic()


counters = BatchCounters()


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
