"""The fleet summary: refreshed by beat into one stored row, read by the page, the API and the
socket (docs/monitoring-summary.md).

`refresh` counts the fleet (figures.counts), stores the result, samples the online ratio every
FLEET_ONLINE_SAMPLE_SECONDS, and emits one live event to GROUP only when something changed —
so a page is told at most once per refresh, however busy the fleet. `current` is the page's
read: the stored counts plus the few newest rows, a constant number of queries.
"""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from devices.models import DeviceEvent
from fleetportal import live
from monitoring.models import Alert, FleetSnapshot, OnlineSample
from monitoring.summary import figures

GROUP = "fleet-summary"
EVENT = {"type": "fleet.summary"}
# Samples older than this are deleted when a new one is taken (the page shows 24 h).
SAMPLES_KEPT = timedelta(days=2)
# Two refreshes at once (a slow one overtaken by the next beat) would count twice for nothing.
_LOCK_KEY = 0x666C_7375  # "flsu"


def refresh(now: datetime | None = None) -> bool | None:
    """Count the fleet and store it; True if the figures changed (and the event went out),
    False if not, None if another refresh was running."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return None
        counts = figures.counts(now)
        digest = _digest(counts)
        previous = FleetSnapshot.objects.filter(pk=1).values_list("digest", flat=True).first()
        FleetSnapshot.objects.update_or_create(
            pk=1, defaults={"figures": counts, "digest": digest, "computed_at": now}
        )
        _sample(counts["presence"], now)
        changed = digest != previous
        if changed:
            live.emit(GROUP, "summary", EVENT)
    return changed


def current(now: datetime | None = None) -> dict[str, Any]:
    """The summary as the page and the API show it (refreshed here only if never computed)."""
    now = now or timezone.now()
    snapshot = FleetSnapshot.objects.filter(pk=1).first()
    if snapshot is None:
        refresh(now)
        snapshot = FleetSnapshot.objects.get(pk=1)
    return {**snapshot.figures, "computed_at": snapshot.computed_at, **figures.latest(now)}


def _digest(counts: dict[str, Any]) -> str:
    """What a watching page would see change: the counts and the newest event and alert."""
    heads = [
        DeviceEvent.objects.order_by("-created_at").values_list("pk", flat=True).first(),
        Alert.objects.filter(resolved_at__isnull=True)
        .order_by("-raised_at")
        .values_list("pk", flat=True)
        .first(),
    ]
    text = json.dumps([counts, heads], sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def _sample(presence: dict[str, int], now: datetime) -> None:
    every = timedelta(seconds=settings.FLEET_ONLINE_SAMPLE_SECONDS)
    if OnlineSample.objects.filter(sampled_at__gt=now - every).exists():
        return
    OnlineSample.objects.create(
        sampled_at=now, online=presence["online"], in_service=presence["in_service"]
    )
    OnlineSample.objects.filter(sampled_at__lt=now - SAMPLES_KEPT).delete()
