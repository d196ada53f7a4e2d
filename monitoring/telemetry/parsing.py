"""What a telemetry message holds, checked before anything is stored (pure: no Django).

A device publishes a JSON object of numeric fields to `devices/<id>/telemetry`, optionally with
`ts`: ISO 8601 with an offset (`2026-12-07T15:00:00Z`), or epoch seconds or milliseconds (a
number above 10^11 is milliseconds). Without `ts` the point is timed by the bridge's arrival.

A message that cannot be read — not JSON, not an object, more fields than allowed, a `ts` that
is not a time or lies beyond the accepted past or future — is dropped whole. A field whose name
is empty, too long or has characters outside [A-Za-z0-9_.:-] (NUL included), or whose value is
not a finite number (a string, a boolean, null, an object, NaN, ±Infinity, beyond a double)
is dropped alone. Each dropped value counts one, a message dropped unread counts one.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

TIMESTAMP_KEY = "ts"
NAME = re.compile(r"[A-Za-z0-9_.:-]+")
MILLISECONDS_ABOVE = 1e11  # 10^11 seconds is the year 5138; 10^11 ms is 1973


class Reason:
    """Why values were dropped (log lines and tests)."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    TOO_MANY_FIELDS = "too_many_fields"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    BAD_NAME = "bad_name"
    NOT_NUMERIC = "not_numeric"
    NOT_FINITE = "not_finite"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_DEVICE = "unknown_device"


@dataclass(frozen=True)
class Limits:
    max_fields: int
    max_name_length: int
    max_past: timedelta
    max_future: timedelta


@dataclass
class Parsed:
    """The values to store, at `ts`, and what was dropped by reason."""

    ts: datetime
    values: list[tuple[str, float]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def parse(payload: bytes, received_at: datetime, limits: Limits) -> Parsed:
    parsed = Parsed(received_at)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:  # NaN, Infinity, 1e400 and broken UTF-8 land here too
        parsed.dropped[Reason.NOT_JSON] += 1
        return parsed
    if not isinstance(document, dict):
        parsed.dropped[Reason.NOT_OBJECT] += 1
        return parsed
    fields = len(document) - (TIMESTAMP_KEY in document)
    if fields > limits.max_fields:
        parsed.dropped[Reason.TOO_MANY_FIELDS] += fields
        return parsed
    if TIMESTAMP_KEY in document:
        ts = timestamp(document.pop(TIMESTAMP_KEY))
        if ts is None:
            parsed.dropped[Reason.BAD_TIMESTAMP] += max(fields, 1)
            return parsed
        if not received_at - limits.max_past <= ts <= received_at + limits.max_future:
            parsed.dropped[Reason.TIMESTAMP_OUT_OF_RANGE] += max(fields, 1)
            return parsed
        parsed.ts = ts
    for name, value in document.items():
        reason = _refusal(name, value, limits.max_name_length)
        if reason is None:
            parsed.values.append((name, float(value)))
        else:
            parsed.dropped[reason] += 1
    return parsed


def _refusal(name: str, value, max_name_length: int) -> str | None:
    if len(name) > max_name_length or not NAME.fullmatch(name):
        return Reason.BAD_NAME
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Reason.NOT_NUMERIC
    if isinstance(value, int):
        return None if -1e308 < value < 1e308 else Reason.NOT_FINITE
    return None if math.isfinite(value) else Reason.NOT_FINITE


def timestamp(value) -> datetime | None:
    """`ts` as an aware UTC datetime; None when it is not a time we read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            return None
        seconds = value / 1000 if value > MILLISECONDS_ABOVE else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        # A time without an offset is ambiguous: refused rather than guessed.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    return None
