"""What the API and the chart ask of telemetry, over monitoring.telemetry.queries: a device
found by its device_id (404 otherwise), aggregates shaped as columns, a page of raw points."""

import uuid
from datetime import datetime

from django.http import Http404
from django.utils import timezone

from devices.models import Device
from monitoring.telemetry import queries


def device_pk(device_id: str) -> uuid.UUID:
    pk = Device.objects.filter(device_id=device_id).values_list("pk", flat=True).first()
    if pk is None:
        raise Http404("No such device.")
    return pk


def aggregates(pk: uuid.UUID, period: str, name: str | None = None) -> dict:
    """One series per name: bucket starts (epoch seconds) and avg/min/max/count columns."""
    now = timezone.now()
    chosen = queries.period(period)
    series: dict[str, dict[str, list]] = {}
    for bucket in queries.aggregates(pk, period, now, name):
        columns = series.setdefault(
            bucket.name,
            {"name": bucket.name, "t": [], "avg": [], "min": [], "max": [], "count": []},
        )
        columns["t"].append(bucket.start.timestamp())
        for key in ("avg", "min", "max", "count"):
            columns[key].append(getattr(bucket, key))
    return {
        "period": period,
        "bucket_seconds": int(chosen.bucket.total_seconds()),
        "start": queries.floor(now - chosen.length, chosen.bucket),
        "end": now,
        "series": list(series.values()),
    }


def points_page(
    pk: uuid.UUID,
    *,
    page_size: int,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: tuple[datetime, str] | None = None,
) -> tuple[list[dict], tuple[datetime, str] | None]:
    """A page of raw points, newest first, and the cursor of the next page (None at the end)."""
    rows = queries.points(
        pk, name=name, since=since, until=until, after=cursor, limit=page_size + 1
    )
    more = len(rows) > page_size
    rows = rows[:page_size]
    after = (rows[-1][1], rows[-1][0]) if more else None
    return [{"name": n, "ts": ts, "value": v} for n, ts, v in rows], after
