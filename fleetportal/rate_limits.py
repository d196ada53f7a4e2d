"""Rate limits and lockouts, counted in Redis so every portal process shares them.

Two kinds, both keyed by who is asking (a username, an address, a device id, an API user):

- a **failure limit** (`Limit` with a lockout): each refused login or token is counted in a
  window; the failure that reaches the limit locks the key for `lockout_seconds`, and while it
  is locked every attempt — the right password included — is answered 429 with Retry-After.
  `record_failure` returns a `Lockout` only for the failure that started one, so the caller
  writes exactly one security event per lockout.
- a **request rate** (`Limit` without a lockout): at most `allowed` requests per window (a fixed
  window, one INCR per request); over it, 429 until the window ends.

If Redis cannot be reached the request is let through and the error logged: the portal stays
usable for the operators who must fix Redis, and no limit is stricter than the rest of the
portal, which needs Redis anyway.
"""

import hashlib
import logging
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """`allowed` per `window_seconds`; with `lockout_seconds`, reaching it locks the key."""

    name: str
    allowed: int
    window_seconds: int
    lockout_seconds: int = 0

    @property
    def enabled(self) -> bool:
        return self.allowed > 0


@dataclass(frozen=True)
class Lockout:
    """A key that was just locked: what to record in the security event."""

    limit: str
    key: str
    seconds: int


def limit(name: str) -> Limit:
    """The limit named in settings.RATE_LIMITS (e.g. "admin-login-user")."""
    allowed, window, lockout = settings.RATE_LIMITS[name]
    return Limit(name, allowed, window, lockout)


def retry_after(rule: Limit, key: str) -> int:
    """Seconds until `key` may try again under a failure limit; 0 when it is not locked."""
    if not rule.enabled:
        return 0
    try:
        ttl = _redis().ttl(_key(rule, key, "locked"))
    except redis.RedisError as exc:
        _unavailable(exc)
        return 0
    return max(int(ttl), 0)


def record_failure(rule: Limit, key: str) -> Lockout | None:
    """Count one refused attempt by `key`; the Lockout when this one locked it, else None."""
    if not rule.enabled:
        return None
    failures = _key(rule, key, "failures")
    try:
        pipe = _redis().pipeline()
        pipe.incr(failures)
        pipe.expire(failures, rule.window_seconds, nx=True)
        count = pipe.execute()[0]
        if count < rule.allowed:
            return None
        locked = _redis().set(_key(rule, key, "locked"), 1, ex=rule.lockout_seconds, nx=True)
        if locked:
            _redis().delete(failures)  # after the lockout, a new window starts from zero
    except redis.RedisError as exc:
        _unavailable(exc)
        return None
    return Lockout(rule.name, key, rule.lockout_seconds) if locked else None


def forget_failures(rule: Limit, key: str) -> None:
    """A successful login clears its username's failures (not an address's, nor a lockout)."""
    if rule.enabled:
        try:
            _redis().delete(_key(rule, key, "failures"))
        except redis.RedisError as exc:
            _unavailable(exc)


def over_rate(rule: Limit, key: str) -> int:
    """Count one request by `key`; seconds until the window ends when it is over, else 0."""
    if not rule.enabled:
        return 0
    requests = _key(rule, key, "requests")
    try:
        pipe = _redis().pipeline()
        pipe.incr(requests)
        pipe.expire(requests, rule.window_seconds, nx=True)
        pipe.ttl(requests)
        count, _, ttl = pipe.execute()
    except redis.RedisError as exc:
        _unavailable(exc)
        return 0
    return max(int(ttl), 1) if count > rule.allowed else 0


def _key(rule: Limit, key: str, kind: str) -> str:
    # Hashed: a username or device id may hold anything, and stays out of Redis in clear.
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{settings.RATE_LIMIT_KEY_PREFIX}:{rule.name}:{kind}:{digest}"


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1, health_check_interval=30
    )


def _unavailable(exc: Exception) -> None:
    log.error("rate limits: Redis unavailable, request not limited: %s", exc)
