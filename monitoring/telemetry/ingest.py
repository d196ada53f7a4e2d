"""Storing telemetry in the bridge's batches: one COPY per batch, counters once per batch.

The bridge hands every `devices/<id>/telemetry` message to `store` (a router subscriber,
`isolated`: it only reads the payload and queues values in memory, so it needs no savepoint).
`flush` (router.on_batch, before the commit) resolves the batch's device ids to their pks —
from a process cache, the misses in one query —, creates a day's partition if a point needs one
nobody created yet, and writes every value with one binary COPY. Counts go to Redis after the
commit (monitoring.telemetry.counters); dropped values are logged once per interval.

Outside a batch (the runner's one-message replay) `store` writes at once, the same way.

Each device's values are rate limited here, in the bridge (a token bucket of
FLEETPORTAL_TELEMETRY_POINTS_PER_SECOND with FLEETPORTAL_TELEMETRY_POINTS_BURST): a flooding
device's excess is dropped and counted before it costs the database anything, and other devices
keep their own buckets. Delivery is at least once: a bridge that dies between its commit and its
ack gets the batch again and stores its points twice (a unique key would slow every COPY).
"""

import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache

import psycopg
from django.conf import settings
from django.db import connection, transaction

from devices.models import Device
from fleetportal.bridge import router
from fleetportal.bridge.throttle import DeviceThrottle
from monitoring.telemetry import counters, partitions, tables
from monitoring.telemetry.parsing import Limits, Reason, parse

log = logging.getLogger(__name__)

COPY_SQL = f"COPY {tables.POINTS} (device_id, name, ts, value) FROM STDIN (FORMAT BINARY)"
PKS_SQL = f"SELECT device_id, id FROM {Device._meta.db_table} WHERE device_id = ANY(%s)"  # noqa: S608
# device_id -> pk: a device id is never reused, so an entry never goes stale.
_pks: dict[str, uuid.UUID] = {}
PKS_CACHE_SIZE = 1_000_000


@dataclass
class Batch:
    """What a bridge batch has queued: values per device, and its counts."""

    rows: list[tuple[str, str, datetime, float]] = field(default_factory=list)
    messages: int = 0
    points: int = 0
    dropped: Counter = field(default_factory=Counter)  # device_id -> values dropped
    reasons: Counter = field(default_factory=Counter)
    counted: bool = False  # the after-commit count is registered


_state = threading.local()


@cache
def limits() -> Limits:
    # The accepted past never reaches beyond retention: its partitions are gone.
    past = min(settings.TELEMETRY_MAX_PAST_SECONDS, settings.TELEMETRY_RETENTION_DAYS * 86400)
    return Limits(
        max_fields=settings.TELEMETRY_MAX_FIELDS,
        max_name_length=settings.TELEMETRY_MAX_NAME_LENGTH,
        max_past=timedelta(seconds=past),
        max_future=timedelta(seconds=settings.TELEMETRY_MAX_FUTURE_SECONDS),
    )


@cache
def throttle() -> DeviceThrottle | None:
    rate = settings.TELEMETRY_POINTS_PER_SECOND
    if rate <= 0:
        return None
    return DeviceThrottle(rate, max(settings.TELEMETRY_POINTS_BURST, settings.TELEMETRY_MAX_FIELDS))


def store(message: router.InboundMessage) -> None:
    """Queue a telemetry message's values (router subscriber for device:telemetry)."""
    batch = getattr(_state, "batch", None)
    alone = batch is None
    if alone:
        batch = Batch()
    parsed = parse(message.payload, message.received_at, limits())
    device_id = message.device_id
    batch.messages += 1
    values = parsed.values
    bucket = throttle()
    if values and bucket is not None and not bucket.admit(device_id, len(values)):
        parsed.dropped[Reason.RATE_LIMITED] += len(values)
        values = []
    for name, value in values:
        batch.rows.append((device_id, name, parsed.ts, value))
    if parsed.dropped:
        batch.dropped[device_id] += parsed.dropped.total()
        batch.reasons.update(parsed.dropped)
    if alone:
        _write(batch)


# --- the bridge's batches (router.on_batch) ------------------------------------------------------


def begin(messages) -> None:
    _state.batch = Batch()


def flush() -> None:
    batch = getattr(_state, "batch", None)
    if batch is not None:
        _write(batch)


def end() -> None:
    _state.batch = None


def _write(batch: Batch) -> None:
    """COPY the queued values; count the batch once, after its commit."""
    if batch.rows:
        rows = _with_pks(batch)
        if rows:
            partitions.ensure_days(_days(rows))
            copy_rows(rows)
            batch.points += len(rows)
        batch.rows = []
    if not batch.counted and (batch.messages or batch.dropped):
        batch.counted = True
        transaction.on_commit(lambda: _count(batch))


def copy_rows(rows: list[tuple[uuid.UUID, str, datetime, float]]) -> None:
    """One binary COPY of (device pk, name, ts, value) rows."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor, cursor.copy(COPY_SQL) as copy:
        copy.set_types(["uuid", "text", "timestamptz", "float8"])
        for row in rows:
            copy.write_row(row)


def _with_pks(batch: Batch) -> list[tuple[uuid.UUID, str, datetime, float]]:
    missing = {row[0] for row in batch.rows} - _pks.keys()
    if missing:
        if len(_pks) > PKS_CACHE_SIZE:
            _pks.clear()
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(PKS_SQL, [list(missing)])
            _pks.update(cursor.fetchall())
    rows = []
    for device_id, name, ts, value in batch.rows:
        pk = _pks.get(device_id)
        if pk is None:  # no such device (deleted, or a test's leftover): nowhere to keep it
            batch.dropped[device_id] += 1
            batch.reasons[Reason.UNKNOWN_DEVICE] += 1
        else:
            rows.append((pk, name, ts, value))
    return rows


def _days(rows) -> set[date]:
    return {row[2].astimezone(UTC).date() for row in rows}


def _count(batch: Batch) -> None:
    counters.add(batch.messages, batch.points, batch.dropped)
    if batch.dropped:
        _log_dropped(batch.dropped, batch.reasons)
    _forget_quiet_devices()


_pruned_at = [0.0]
PRUNE_SECONDS = 10.0


def _forget_quiet_devices() -> None:
    """Now and then let the buckets forget devices gone quiet, so memory follows the devices
    busy now and not every device ever seen (the throttle's own drop counts are not used:
    ours are per batch, above)."""
    bucket, now = throttle(), clock()
    if bucket is not None and now - _pruned_at[0] >= PRUNE_SECONDS:
        _pruned_at[0] = now
        bucket.take_report()


# --- one log line per interval -------------------------------------------------------------------

_pending_log: dict = {"devices": Counter(), "reasons": Counter(), "logged_at": float("-inf")}
clock = time.monotonic


def _log_dropped(dropped: Counter, reasons: Counter) -> None:
    _pending_log["devices"].update(dropped)
    _pending_log["reasons"].update(reasons)
    now = clock()
    if now - _pending_log["logged_at"] < settings.TELEMETRY_LOG_INTERVAL_SECONDS:
        return
    devices, why = _pending_log["devices"], _pending_log["reasons"]
    log.warning(
        "telemetry: dropped %d values from %d devices since the last report (%s); most from %s",
        devices.total(),
        len(devices),
        ", ".join(f"{reason} {count}" for reason, count in why.most_common()),
        ", ".join(f"{device} {count}" for device, count in devices.most_common(5)),
    )
    _pending_log.update(devices=Counter(), reasons=Counter(), logged_at=now)


def forget() -> None:
    """Forget cached pks, buckets and limits (tests that change settings)."""
    _pks.clear()
    limits.cache_clear()
    throttle.cache_clear()
