"""Daily partitions of the telemetry tables: created ahead, created on demand, dropped at the
retention setting — PostgreSQL's declarative partitioning, no extension.

A partition is named after its table and day (`monitoring_telemetry_point_p20261207`) and
holds [day 00:00 UTC, next day 00:00 UTC). Beat (`maintain`, hourly) and the migration create
today's and FLEETPORTAL_TELEMETRY_PARTITIONS_AHEAD_DAYS days ahead and drop those wholly older
than FLEETPORTAL_TELEMETRY_RETENTION_DAYS; dropping a partition is instant where a DELETE of a
day's points would write every row again. A point for a day nobody created yet (a `ts` in the
accepted past, beat not running) makes the bridge create that day (`ensure_days`) before its
COPY; a transaction-level advisory lock keeps two bridges from racing on the same CREATE.
"""

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from monitoring.telemetry import tables

# Days known to have their partitions, in this process (a partition is never dropped while
# points for its day are still accepted: retention is longer than the accepted past).
_known: set[date] = set()
_DAY = re.compile(r"_p(\d{8})$")
LOCK_KEY = 0x7E1E  # pg_advisory_xact_lock key for partition changes


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def ensure_days(days: Iterable[date]) -> None:
    """Create the partitions of every table for `days` that this process has not seen yet."""
    missing = sorted(set(days) - _known)
    if not missing:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        for day in missing:
            for table, _column in tables.PARTITIONED.items():
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                # Names and bounds come from a date, never from input.
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} "
                    f"PARTITION OF {table} FOR VALUES FROM ('{start.isoformat()}') "
                    f"TO ('{(start + timedelta(days=1)).isoformat()}')"
                )
    # Known once committed: a rolled-back CREATE must be made again by the retry.
    transaction.on_commit(lambda: _known.update(missing))


def existing_days(table: str = tables.POINTS) -> list[date]:
    """The days `table` has a partition for, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    return sorted(
        datetime.strptime(match.group(1), "%Y%m%d").date()
        for match in map(_DAY.search, names)
        if match
    )


def maintain(now: datetime | None = None) -> tuple[list[date], list[date]]:
    """Create today's and the days ahead; drop the days past retention. (created, dropped)."""
    with transaction.atomic():
        return _maintain(now)


def _maintain(now: datetime | None) -> tuple[list[date], list[date]]:
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    wanted = [
        today + timedelta(days=n) for n in range(settings.TELEMETRY_PARTITIONS_AHEAD_DAYS + 1)
    ]
    before = set(existing_days())
    _known.difference_update(wanted)  # re-check: a test or an operator may have dropped them
    ensure_days(wanted)
    cutoff = today - timedelta(days=settings.TELEMETRY_RETENTION_DAYS)
    dropped = [day for day in before if day < cutoff]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        for day in dropped:
            for table in tables.PARTITIONED:
                cursor.execute(f"DROP TABLE IF EXISTS {partition_name(table, day)}")
    transaction.on_commit(lambda: _known.difference_update(dropped))
    return sorted(set(wanted) - before), dropped


def forget() -> None:
    """Forget which days exist (tests that drop partitions behind this process's back)."""
    _known.clear()
