"""GET /metrics: the portal's own figures in Prometheus' text format (prometheus-client).

Read at scrape time, each from where it lives, with no per-device label anywhere except the
bounded top-N of telemetry drops:
- the bridge's messages, batches, batch sizes and latency: the Redis hash the bridge adds to
  (monitoring.summary.bridge_metrics);
- telemetry totals: the telemetry part's Redis counters (fp:metrics:telemetry_*), its per-device
  drops (hash fp:telemetry:dropped) as a total and the TOP_DROPPING devices;
- the outbox's depth (counted up to OUTBOX_COUNT_CAP) and the age of its oldest row;
- Celery's queue depth (LLEN of each queue in METRICS_CELERY_QUEUES on the Celery broker);
- devices by presence and status, open alerts by severity: the fleet summary's stored counts
  (beat's last refresh, whose age is exported too), so a scrape never counts a million rows.
"""

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from fleetportal.models import OutboxMessage
from monitoring.models import FleetSnapshot
from monitoring.summary import access, bridge_metrics

TELEMETRY_COUNTERS = ("messages", "points", "dropped")
DROPPED_HASH = "fp:telemetry:dropped"
TOP_DROPPING = 10
# Past this many devices with drops, only the total is exported (HGETALL would be too big).
DROPPED_TOP_MAX_DEVICES = 10_000
OUTBOX_COUNT_CAP = 1_000_000

log = logging.getLogger(__name__)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if limited := access.too_many(request):
        return limited
    if not access.may_read_metrics(request):
        answer = JsonResponse({"detail": "A metrics token is needed."}, status=401)
        answer["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return answer
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class PortalCollector:
    """Each source read on its own: one that fails (Redis away) leaves the others and says so
    in fleetportal_metrics_source_up."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        up = GaugeMetricFamily(
            "fleetportal_metrics_source_up",
            "1 when the figures of this source could be read.",
            labels=["source"],
        )
        for source, read in SOURCES:
            try:
                families = list(read(now))
            except (redis.RedisError, DatabaseError) as exc:
                log.warning("metrics: %s not read: %s", source, exc)
                up.add_metric([source], 0)
            else:
                up.add_metric([source], 1)
                yield from families
        yield up


def bridge_families(now: datetime) -> Iterator[Metric]:
    raw = _redis().hgetall(bridge_metrics.KEY)
    values = {k.decode(): float(v) for k, v in raw.items()}
    yield CounterMetricFamily(
        "fleetportal_bridge_messages",
        "Device messages the bridge handled in batches.",
        value=values.get("messages_total", 0),
    )
    yield CounterMetricFamily(
        "fleetportal_bridge_batches",
        "Batches (transactions) the bridge handled.",
        value=values.get("batches_total", 0),
    )
    for name, bounds, doc in (
        ("size", bridge_metrics.SIZE_BUCKETS, "Messages per bridge batch."),
        ("seconds", bridge_metrics.SECONDS_BUCKETS, "Time to handle a bridge batch (seconds)."),
    ):
        running, buckets = 0.0, []
        for bound in [*bounds, "+Inf"]:
            running += values.get(f"{name}_le:{bound}", 0)
            buckets.append((str(float(bound)) if bound != "+Inf" else bound, running))
        yield HistogramMetricFamily(
            f"fleetportal_bridge_batch_{name}",
            doc,
            buckets=buckets,
            sum_value=values.get(f"{name}_sum", 0),
        )


def telemetry_families(now: datetime) -> Iterator[Metric]:
    client = _redis()
    pipe = client.pipeline(transaction=False)
    for name in TELEMETRY_COUNTERS:
        pipe.get(f"fp:metrics:telemetry_{name}")
    pipe.hlen(DROPPED_HASH)
    *totals, dropping = pipe.execute()
    for name, total in zip(TELEMETRY_COUNTERS, totals, strict=True):
        yield CounterMetricFamily(
            f"fleetportal_telemetry_{name}",
            f"Telemetry {name} the bridge counted (fp:metrics:telemetry_{name}).",
            value=float(total or 0),
        )
    yield GaugeMetricFamily(
        "fleetportal_telemetry_dropping_devices",
        "Devices with telemetry dropped over their rate.",
        value=dropping,
    )
    top = GaugeMetricFamily(
        "fleetportal_telemetry_dropped_top",
        f"Telemetry messages dropped, the {TOP_DROPPING} devices with most.",
        labels=["device_id"],
    )
    if dropping <= DROPPED_TOP_MAX_DEVICES:
        counts = {k.decode(): int(v) for k, v in client.hgetall(DROPPED_HASH).items()}
        for device_id, n in sorted(counts.items(), key=lambda i: -i[1])[:TOP_DROPPING]:
            top.add_metric([device_id], n)
    yield top


def outbox_families(now: datetime) -> Iterator[Metric]:
    depth = OutboxMessage.objects.order_by()[:OUTBOX_COUNT_CAP].count()
    oldest = OutboxMessage.objects.aggregate(oldest=Min("created_at"))["oldest"] if depth else None
    yield GaugeMetricFamily(
        "fleetportal_outbox_depth", "Messages waiting in the outbox (capped).", value=depth
    )
    yield GaugeMetricFamily(
        "fleetportal_outbox_oldest_age_seconds",
        "Age of the oldest outbox message (0 when empty).",
        value=(now - oldest).total_seconds() if oldest else 0,
    )


def celery_families(now: datetime) -> Iterator[Metric]:
    queues = settings.METRICS_CELERY_QUEUES
    client = _celery_redis()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    family = GaugeMetricFamily(
        "fleetportal_celery_queue_length", "Tasks waiting in a Celery queue.", labels=["queue"]
    )
    for queue, length in zip(queues, pipe.execute(), strict=True):
        family.add_metric([queue], length)
    yield family


def fleet_families(now: datetime) -> Iterator[Metric]:
    snapshot = FleetSnapshot.objects.filter(pk=1).first()
    figures = snapshot.figures if snapshot else {}
    presence = GaugeMetricFamily(
        "fleetportal_devices_presence", "In-service devices by presence.", labels=["presence"]
    )
    for state in ("online", "offline", "never_connected"):
        presence.add_metric([state], figures.get("presence", {}).get(state, 0))
    status = GaugeMetricFamily("fleetportal_devices", "Devices by status.", labels=["status"])
    for name, n in sorted(figures.get("devices", {}).get("by_status", {}).items()):
        status.add_metric([name], n)
    alerts = GaugeMetricFamily(
        "fleetportal_alerts_open", "Open alerts by severity.", labels=["severity"]
    )
    for severity, n in sorted(figures.get("alerts", {}).get("by_severity", {}).items()):
        alerts.add_metric([severity], n)
    yield from (presence, status, alerts)
    yield GaugeMetricFamily(
        "fleetportal_fleet_summary_age_seconds",
        "Seconds since beat last counted the fleet (the figures above).",
        value=(now - snapshot.computed_at).total_seconds() if snapshot else -1,
    )


SOURCES = [
    ("bridge", bridge_families),
    ("telemetry", telemetry_families),
    ("outbox", outbox_families),
    ("celery", celery_families),
    ("fleet", fleet_families),
]


def add_source(name: str, read: Callable[[datetime], Iterator[Metric]]) -> None:
    """Export `read(now)`'s families too (an app above monitoring, e.g. a gateway's link); a
    source that fails is reported in fleetportal_metrics_source_up like the portal's own."""
    if name not in {source for source, _ in SOURCES}:
        SOURCES.append((name, read))


@cache
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _redis() -> redis.Redis:
    return _redis_for(settings.REDIS_URL)


def _celery_redis() -> redis.Redis:
    return _redis_for(settings.CELERY_BROKER_URL)
