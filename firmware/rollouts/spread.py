"""Load spreading for a rollout's downloads: a cap on concurrent downloads (503 + Retry-After
beyond it) and the bytes served per rollout, both kept in Redis so every web process shares them.

**Slots.** Each rollout with `download_concurrency` has a sorted set of holders (a random token
per download) scored by when the holder's lease ends. Taking a slot is one Lua script (atomic):
drop expired holders, count, add when under the cap. A download renews its lease while it streams
and removes itself when the response is closed — finished, or abandoned by the client (Django
closes the response either way). A worker killed mid-download never removes its holder, so the
lease (settings.ROLLOUT_DOWNLOAD_SLOT_SECONDS) frees the slot soon after. INCR/DECR was the other
choice: simpler, but a crashed worker's DECR never comes and the counter leaks a slot forever.

**Bytes.** Each artifact response of a rollout's wave adds the bytes it actually streamed (a 206
counts its range) to a Redis hash, rollout pk → bytes, when it closes. `flush_bytes_served` (called
from the rollouts tick) takes the hash atomically and adds each rollout's bytes to
Rollout.bytes_served, one UPDATE per rollout.

If Redis cannot be reached the download is served uncapped and uncounted, and the error logged:
refusing every device its firmware would be worse than an unspread load.
"""

import hashlib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F

from firmware.rollouts.models import Rollout

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 15  # Retry-After is 15-44 s, fixed per device so retries spread out
RETRY_SPREAD_SECONDS = 30
_BYTES_KEY = "bytes"

# KEYS[1] the rollout's holders; ARGV: now, lease end, cap, token. 1 when the slot was taken.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2] - ARGV[1]) + 60)
return 1
"""
# KEYS[1] the bytes hash: all its fields, and the hash gone, in one step.
_TAKE_ALL = """
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all
"""


@dataclass(frozen=True)
class RolloutDownload:
    """Which rollout a download belongs to, and its cap (None: uncapped, only counted)."""

    rollout_pk: int
    concurrency: int | None


class Busy(Exception):
    """Every download slot of the rollout is taken; come back after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class Slot:
    """One download of a rollout: holds a slot (when capped) and counts bytes until closed."""

    def __init__(self, download: RolloutDownload, token: str | None):
        self.download, self.token, self.sent = download, token, 0
        self._renewed = time.time()
        self._closed = False

    def renew(self) -> None:
        # A lease shorter than the download is renewed as it streams, at most every third of it.
        lease = settings.ROLLOUT_DOWNLOAD_SLOT_SECONDS
        if self.token is None or time.time() - self._renewed < lease / 3:
            return
        self._renewed = time.time()
        _quietly(
            lambda: _redis().zadd(_slots_key(self.download), {self.token: time.time() + lease})
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pipe = _redis().pipeline()
        if self.token is not None:
            pipe.zrem(_slots_key(self.download), self.token)
        if self.sent:
            pipe.hincrby(_key(_BYTES_KEY), str(self.download.rollout_pk), self.sent)
        _quietly(pipe.execute)


class Metered:
    """A download's chunks, counted as they are sent; Django calls close() when it closes the
    response (finished, or the client gone), which frees the slot and adds the bytes."""

    def __init__(self, slot: Slot, chunks: Iterator[bytes]):
        self.slot, self.chunks = slot, chunks

    def __iter__(self) -> "Metered":
        return self

    def __next__(self) -> bytes:
        chunk = next(self.chunks)
        self.slot.sent += len(chunk)
        self.slot.renew()
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()  # the artifact file
        finally:
            self.slot.close()  # also when the chunks could not be closed


def take_slot(download: RolloutDownload, device_id: str) -> Slot:
    """A slot for one download, or Busy when the rollout's cap is reached."""
    if download.concurrency is None:
        return Slot(download, None)
    token, now = secrets.token_hex(8), time.time()
    lease_end = now + settings.ROLLOUT_DOWNLOAD_SLOT_SECONDS
    taken = _quietly(
        lambda: _redis().eval(
            _TAKE, 1, _slots_key(download), now, lease_end, download.concurrency, token
        ),
        default=1,
    )
    if not taken:
        raise Busy(retry_after(device_id))
    return Slot(download, token)


def retry_after(device_id: str) -> int:
    """Seconds a refused device waits: fixed per device (a hash), so retries do not arrive
    together."""
    digest = hashlib.sha256(device_id.encode("utf-8", "surrogatepass")).digest()
    return RETRY_BASE_SECONDS + int.from_bytes(digest[:4], "big") % RETRY_SPREAD_SECONDS


def flush_bytes_served() -> None:
    """Add the bytes counted in Redis to Rollout.bytes_served, one UPDATE per rollout."""
    taken = _quietly(lambda: _redis().eval(_TAKE_ALL, 1, _key(_BYTES_KEY)), default=[])
    counted = {int(pk): int(sent) for pk, sent in zip(taken[::2], taken[1::2], strict=True)}
    try:
        with transaction.atomic():
            for pk, sent in sorted(counted.items()):
                Rollout.objects.filter(pk=pk).update(bytes_served=F("bytes_served") + sent)
    except Exception:
        # Put them back so the next flush adds them; nothing counted is lost to a failed write.
        pipe = _redis().pipeline()
        for pk, sent in counted.items():
            pipe.hincrby(_key(_BYTES_KEY), str(pk), sent)
        _quietly(pipe.execute)
        raise


def _slots_key(download: RolloutDownload) -> str:
    return _key(f"slots:{download.rollout_pk}")


def _key(name: str) -> str:
    return f"{settings.ROLLOUT_REDIS_KEY_PREFIX}:{name}"


def _quietly(call, default=None):
    try:
        return call()
    except redis.RedisError as exc:
        log.error("rollout downloads: Redis unavailable, not capped or counted: %s", exc)
        return default


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1, health_check_interval=30
    )
