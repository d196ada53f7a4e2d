"""Reading telemetry: a device's aggregates per bucket for a period, each device's average over
a window (alert rules), a device's raw points. Every statement takes its values as parameters —
the period picks one of a fixed set of statements and bucket widths, never text in SQL.

Periods (the only ones accepted; anything else is a ValueError the API answers with 400):

| period | bucket | points | read from |
|---|---|---|---|
| 15m | 5 s | 180 | points |
| 1h | 15 s | 240 | points |
| 24h | 5 min | 288 | minute rollups |
| 7d | 1 h | 168 | hour rollups |
| 30d | 3 h | 240 | hour rollups |

Buckets are `date_bin` buckets from the epoch, so the same period asked twice gives the same
bucket edges; the first bucket starts at or before `now - period`. A read from rollups adds the
raw points received since the rollups' watermark (monitoring.telemetry.rollups) whose `ts` is
after it too, so a chart is as current as the points: only a point sent late — with a `ts`
older than the last rollup — waits for the next rollup (FLEETPORTAL_TELEMETRY_ROLLUP_SECONDS)
to show. That keeps the raw part of the read to the few minutes since the watermark on the
(device, ts) index, instead of every point of the period.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from monitoring.telemetry import tables
from monitoring.telemetry.parsing import NAME

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    length: timedelta
    bucket: timedelta
    source: str  # tables.POINTS, MINUTES or HOURS


PERIODS = {
    "15m": Period(timedelta(minutes=15), timedelta(seconds=5), tables.POINTS),
    "1h": Period(timedelta(hours=1), timedelta(seconds=15), tables.POINTS),
    "24h": Period(timedelta(hours=24), timedelta(minutes=5), tables.MINUTES),
    "7d": Period(timedelta(days=7), timedelta(hours=1), tables.HOURS),
    "30d": Period(timedelta(days=30), timedelta(hours=3), tables.HOURS),
}

_NAME_FILTER = "(%(name)s::text IS NULL OR name = %(name)s)"
# Raw points not yet in the rollups (all of them before the first rollup), timed after the
# watermark (see the module's docstring).
_WATERMARK = (
    "COALESCE("  # noqa: S608
    f"(SELECT rolled_up_to FROM {tables.STATE} WHERE id = 1), '-infinity')"
)
_NOT_ROLLED_UP = f"ts >= {_WATERMARK} AND received_at >= {_WATERMARK}"


def _rollup_rows(rollup: str, where: str) -> str:
    """A rollup's rows and the raw points received since its watermark, as rollup rows."""
    return (
        f"SELECT device_id, name, bucket, count, sum, min, max FROM {rollup} "  # noqa: S608
        f"WHERE bucket >= %(start)s AND bucket < %(end)s AND {where} "
        "UNION ALL "
        f"SELECT device_id, name, ts, 1, value, value, value FROM {tables.POINTS} "
        f"WHERE ts >= %(start)s AND ts < %(end)s AND {where} AND {_NOT_ROLLED_UP}"
    )


def _raw_rows(where: str) -> str:
    return (
        f"SELECT device_id, name, ts AS bucket, 1 AS count, value AS sum, value AS min, "  # noqa: S608
        f"value AS max FROM {tables.POINTS} WHERE ts >= %(start)s AND ts < %(end)s AND {where}"
    )


def _rows(source: str, where: str) -> str:
    return _raw_rows(where) if source == tables.POINTS else _rollup_rows(source, where)


def _aggregates_sql(source: str) -> str:
    return (
        "SELECT name, date_bin(%(bucket)s, bucket, %(origin)s) AS b, sum(count)::bigint, "  # noqa: S608
        "sum(sum) / sum(count), min(min), max(max) "
        f"FROM ({_rows(source, 'device_id = %(device)s AND ' + _NAME_FILTER)}) AS u "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )


AGGREGATES_SQL = {source: _aggregates_sql(source) for source in tables.PARTITIONED}
WINDOW_SQL = {
    source: (
        "SELECT device_id, sum(sum) / sum(count) "  # noqa: S608
        f"FROM ({_rows(source, 'name = %(name)s')}) AS u GROUP BY device_id"
    )
    for source in tables.PARTITIONED
}
POINTS_SQL = (
    f"SELECT name, ts, value FROM {tables.POINTS} "  # noqa: S608
    f"WHERE device_id = %(device)s AND {_NAME_FILTER} "
    "AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s) "
    "AND (%(until)s::timestamptz IS NULL OR ts < %(until)s) "
    "AND (%(after_ts)s::timestamptz IS NULL OR (ts, name) < (%(after_ts)s, %(after_name)s)) "
    "ORDER BY ts DESC, name DESC LIMIT %(limit)s"
)


@dataclass(frozen=True)
class Bucket:
    name: str
    start: datetime
    count: int
    avg: float
    min: float
    max: float


def period(text: str) -> Period:
    """The period named `text` (one of PERIODS); ValueError for anything else."""
    found = PERIODS.get(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"Unknown period; use one of {', '.join(PERIODS)}.")
    return found


def check_name(name: str) -> str:
    """A metric name as devices may send it; ValueError for anything else (NUL included)."""
    if not (len(name) <= settings.TELEMETRY_MAX_NAME_LENGTH and NAME.fullmatch(name)):
        raise ValueError(f"A name is 1-{settings.TELEMETRY_MAX_NAME_LENGTH} of A-Z a-z 0-9 _ . : -")
    return name


def floor(at: datetime, width: timedelta) -> datetime:
    """The start of `at`'s date_bin bucket of `width` (from the epoch)."""
    return at - (at - EPOCH) % width


def aggregates(
    device_pk: uuid.UUID, period_name: str, now: datetime, name: str | None = None
) -> list[Bucket]:
    """avg/min/max/count per name and bucket over `period_name` up to `now`, oldest first."""
    chosen = period(period_name)
    if name is not None:
        check_name(name)
    params = {
        "device": device_pk,
        "name": name,
        "bucket": chosen.bucket,
        "origin": EPOCH,
        "start": floor(now - chosen.length, chosen.bucket),
        "end": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(AGGREGATES_SQL[chosen.source], params)
        return [Bucket(*row) for row in cursor.fetchall()]


def window_values(metric: str, window: timedelta, now: datetime) -> dict[uuid.UUID, float]:
    """Each device's average of `metric` over [now - window, now) (alert rules, shared
    interface): one query, from the points for windows up to an hour, else from the minute
    (up to a day) or hour rollups plus what arrived since — whose first bucket may start up to
    a bucket's width before `now - window`."""
    check_name(metric)
    if window <= timedelta(hours=1):
        source, start = tables.POINTS, now - window
    else:
        width = timedelta(minutes=1) if window < timedelta(days=1) else timedelta(hours=1)
        source = tables.MINUTES if width == timedelta(minutes=1) else tables.HOURS
        start = floor(now - window, width)
    with connection.cursor() as cursor:
        cursor.execute(WINDOW_SQL[source], {"name": metric, "start": start, "end": now})
        return dict(cursor.fetchall())


def points(
    device_pk: uuid.UUID,
    *,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> list[tuple[str, datetime, float]]:
    """A device's raw points, newest first, (name, ts, value); `after` = the last row of the
    previous page."""
    if name is not None:
        check_name(name)
    params = {
        "device": device_pk,
        "name": name,
        "since": since,
        "until": until,
        "after_ts": after[0] if after else None,
        "after_name": after[1] if after else None,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(POINTS_SQL, params)
        return cursor.fetchall()
