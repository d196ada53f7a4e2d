"""Per-minute and per-hour rollups (count, sum, min, max per device, name and bucket), kept by
beat, incrementally and set-based.

Rolling up at ingest would add an upsert of every (device, name, minute) to each bridge batch;
beat does it once a minute for everything that arrived since, with one statement: the points
received in [watermark, now - lag) are grouped into minute and hour buckets and added to the
rollups (`INSERT … SELECT … ON CONFLICT DO UPDATE`: count and sum add up, min and max take the
extremes), and the watermark moves to the end of that range — in the same transaction, with
the watermark's row locked, so two runs never count a point twice. The watermark is the time a
point was *received* (its COPY's start), not its `ts`: a point sent late, with an old `ts`, is
still rolled up, into its own old bucket. The lag (FLEETPORTAL_TELEMETRY_ROLLUP_LAG_SECONDS) lets
a bridge batch that started before the cut commit first.

Readers combine the rollups with the raw points received since the watermark
(monitoring.telemetry.queries), so a chart read from rollups misses nothing.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from monitoring.telemetry import tables

# The minute buckets of the delta, computed once; the hour buckets are summed from them.
_UPSERT = """
    INSERT INTO {rollup} AS r (device_id, name, bucket, count, sum, min, max)
    {select}
    ON CONFLICT (device_id, name, bucket) DO UPDATE SET
        count = r.count + excluded.count, sum = r.sum + excluded.sum,
        min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)
"""
ROLL_UP_SQL = (
    "WITH delta AS MATERIALIZED ("  # noqa: S608
    "SELECT device_id, name, date_bin('1 minute', ts, TIMESTAMPTZ 'epoch') AS bucket, "
    "count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max "
    f"FROM {tables.POINTS} WHERE received_at >= %(since)s AND received_at < %(until)s "
    "GROUP BY 1, 2, 3), "
    "minutes AS ("
    + _UPSERT.format(rollup=tables.MINUTES, select="SELECT * FROM delta")
    + "), hours AS ("
    + _UPSERT.format(
        rollup=tables.HOURS,
        select="SELECT device_id, name, date_bin('1 hour', bucket, TIMESTAMPTZ 'epoch'), "
        "sum(count), sum(sum), min(min), max(max) FROM delta GROUP BY 1, 2, 3",
    )
    + ") SELECT COALESCE(sum(count), 0) FROM delta"
)


def roll_up(now: datetime | None = None) -> int:
    """Add the points received since the watermark to the rollups; how many were added."""
    until = (now or timezone.now()) - timedelta(seconds=settings.TELEMETRY_ROLLUP_LAG_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {tables.STATE} (id, rolled_up_to) VALUES (1, 'epoch') "  # noqa: S608
            "ON CONFLICT (id) DO NOTHING"
        )
        cursor.execute(
            f"SELECT rolled_up_to FROM {tables.STATE} WHERE id = 1 FOR UPDATE"  # noqa: S608
        )
        since = cursor.fetchone()[0]
        if since >= until:
            return 0
        cursor.execute(
            ROLL_UP_SQL,
            {"since": since, "until": until},
        )
        added = cursor.fetchone()[0]
        cursor.execute(
            f"UPDATE {tables.STATE} SET rolled_up_to = %s WHERE id = 1",  # noqa: S608
            [until],
        )
    return added
