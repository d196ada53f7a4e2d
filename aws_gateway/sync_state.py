"""Each device's sync state with AWS (ThingSync): marked pending when something AWS should know
changes, leased by the worker that syncs it, and recorded as synced or failed afterwards.

Nothing is lost between these steps: marking bumps `generation` in the same transaction as the
change (a registry hook or the credential door), a sync remembers the generation it started
from, and only a sync that saw the latest generation leaves the row synced. A failed sync is
tried again after a growing pause (AWS_SYNC_RETRY_SECONDS doubling, at most an hour), by beat's
sweep, which also picks up a row whose task was lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from aws_gateway.choices import SyncState
from aws_gateway.models import ThingSync

MAX_BACKOFF = timedelta(hours=1)
# How long a worker holds the rows it took from the sweep before another may take them.
LEASE = timedelta(minutes=5)
ERROR_MAX = 2000
# Set while an import writes devices AWS already has: their rows are marked, but no sync is
# queued (the import leaves them synced at AWS's version in the same transaction).
_importing: ContextVar[bool] = ContextVar("aws_importing", default=False)


@contextmanager
def importing() -> Iterator[None]:
    token = _importing.set(True)
    try:
        yield
    finally:
        _importing.reset(token)


def mark_pending(device_pks: Iterable[object]) -> list[object]:
    """Mark devices as having changes for AWS (one statement), and sync them after commit."""
    pks = sorted(set(device_pks), key=str)
    if not pks:
        return []
    table = connection.ops.quote_name(ThingSync._meta.db_table)  # model metadata, not input
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS s (device_id, state, thing_name, thing_arn, generation,"  # noqa: S608
            " synced_generation, attempts, next_attempt_at, last_error, note, updated_at)"
            " SELECT pk, %s, '', '', 1, 0, 0, now(), '', '', now() FROM unnest(%s::uuid[]) pk"
            " ON CONFLICT (device_id) DO UPDATE SET state = EXCLUDED.state,"
            " generation = s.generation + 1, next_attempt_at = now(), updated_at = now()",
            [SyncState.PENDING, [str(pk) for pk in pks]],
        )
    if not _importing.get():
        # robust: a broker hiccup must not fail the change; beat's sweep syncs the rows anyway.
        transaction.on_commit(partial(_sync_soon, [str(pk) for pk in pks]), robust=True)
    return pks


def _sync_soon(pks: list[str]) -> None:
    from aws_gateway import tasks  # tasks imports the registry, which imports this module

    tasks.sync_things.delay(pks)


def lease_due(limit: int) -> list[str]:
    """Take up to `limit` rows waiting whose next attempt is due, pushing their next attempt a
    lease ahead in the same statement (two sweeps never take the same row)."""
    now = timezone.now()
    table = connection.ops.quote_name(ThingSync._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_attempt_at = %s"  # noqa: S608
            f" WHERE device_id IN (SELECT device_id FROM {table}"
            " WHERE state IN (%s, %s) AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING device_id",
            [now + LEASE, SyncState.PENDING, SyncState.FAILED, now, limit],
        )
        return [str(pk) for (pk,) in cursor.fetchall()]


def record_synced(row: ThingSync, *, started: int, state: str = SyncState.SYNCED, **fields) -> None:
    """The sync that started at generation `started` succeeded: synced, unless a change arrived
    meanwhile (then pending, due now)."""
    now = timezone.now()
    ThingSync.objects.filter(pk=row.pk).update(
        state=Case(When(generation=started, then=Value(state)), default=Value(SyncState.PENDING)),
        synced_generation=started,
        attempts=0,
        next_attempt_at=now,
        last_error="",
        synced_at=now,
        **fields,
    )


def record_failed(row: ThingSync, error: str) -> None:
    """The sync failed: the error on the row, the next attempt after a doubling pause."""
    now = timezone.now()
    pause = min(MAX_BACKOFF, timedelta(seconds=settings.AWS_SYNC_RETRY_SECONDS) * 2**row.attempts)
    ThingSync.objects.filter(pk=row.pk).update(
        state=SyncState.FAILED,
        attempts=F("attempts") + 1,
        next_attempt_at=now + pause,
        last_error=error[:ERROR_MAX],
        last_error_at=now,
    )
