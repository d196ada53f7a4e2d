#!/usr/bin/env python
"""The fleet summary at fleet scale: ours (beat's stored counts + the newest rows) against the
naive summary (one COUNT(*) per figure on every request), measured in the same run.

    .venv/bin/python bench/dashboard.py [--devices 1000000] [--alerts 100000] [--samples 20]

Loads the fleet once into a scratch database (BENCH_DATABASE_URL, as bench/registry.py), then,
inside one transaction rolled back at the end: presence for 90% of the devices (60% online),
--alerts open alerts (and half as many resolved), 200,000 certificates expiring over a year,
100,000 pushed configuration keys (a fifth of them drifting), 100,000 device events. Times,
in-process with Django's test client after warm-up: GET /api/v1/fleet/summary/ and the /fleet/
page (ours), the naive COUNT-per-figure summary, and beat's refresh (the set-based counts the
page reads). Prints p50/p95 per row and the naive/ours ratio.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench")

from django.db import connection, transaction  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import fleet_data, report  # noqa: E402
from devices.choices import DeviceStatus  # noqa: E402
from devices.credentials import expiring  # noqa: E402
from devices.models import Device  # noqa: E402
from firmware.models import Job  # noqa: E402
from firmware.rollouts.models import Rollout  # noqa: E402
from monitoring.models import Alert, Presence  # noqa: E402
from monitoring.summary import figures, services  # noqa: E402
from shadows.configuration.services import drifted_devices  # noqa: E402

HASH = "mod(hashtext(d.device_id)::bigint + 2147483648, 100)"
DATA_SQL = [
    # 60% online, 30% offline, 10% never connected.
    f"""INSERT INTO monitoring_presence
        (device_id, online, changed_at, connection, connected_at, disconnected_at, reason,
         connections)
    SELECT d.id, {HASH} < 60, now(), 'c-' || d.device_id, now(), NULL, 'connected', 1
    FROM devices_device d WHERE {HASH} < 90""",
    """INSERT INTO monitoring_alertrule (name, description, kind, filter, metric, op,
        window_seconds, for_seconds, severity, enabled, webhook_url, created_by, created_at)
    VALUES ('bench', '', 'filter', '{}', '', '', 0, 0, 'warning', true, '', 'bench', now())""",
    # %(alerts)s open alerts and half as many resolved; 10/30/60% critical/warning/info.
    """INSERT INTO monitoring_alert (rule_id, device_id, severity, raised_at, resolved_at,
        acknowledged_at, acknowledged_by, details)
    SELECT (SELECT id FROM monitoring_alertrule WHERE name = 'bench'), d.id,
        CASE WHEN n %% 10 = 0 THEN 'critical' WHEN n %% 10 < 4 THEN 'warning' ELSE 'info' END,
        now() - make_interval(secs => n::int), CASE WHEN n > %(alerts)s THEN now() END,
        NULL, '', '{}'
    FROM (SELECT id, row_number() OVER () AS n FROM devices_device
          LIMIT %(alerts)s * 3 / 2) d""",
    """INSERT INTO devices_devicecredential (id, device_id, credential_type, credential_value,
        status, serial_number, fingerprint, common_name, not_before, expires_at, revoked,
        revocation_reason, ownership_token_hash, claim_template, created_at)
    SELECT gen_random_uuid(), d.id, 'x509', 'pem', 'active', md5(d.device_id),
        md5(d.device_id) || md5(d.device_id), d.device_id, now() - interval '1 day',
        now() + make_interval(days => (1 + mod(n, 365))::int), false, '', '', '', now()
    FROM (SELECT id, device_id, row_number() OVER () AS n FROM devices_device LIMIT 200000) d""",
    """INSERT INTO shadows_deviceconfiguration (device_id, config_key, config_value, version,
        source_group_id, applied, applied_at, pushed_at)
    SELECT d.id, 'rate', '1', 1, NULL, mod(n, 5) <> 0, NULL, now() - interval '1 hour'
    FROM (SELECT id, row_number() OVER () AS n FROM devices_device LIMIT 100000) d""",
    """INSERT INTO devices_deviceevent (device_id, event_type, event_data, actor, created_at)
    SELECT d.id, 'registered', '{}', 'system', now() - make_interval(secs => n::int)
    FROM (SELECT id, row_number() OVER () AS n FROM devices_device LIMIT 100000) d""",
]
API = "/api/v1/fleet/summary/"
TABLES = [
    "monitoring_presence",
    "monitoring_alert",
    "devices_devicecredential",
    "shadows_deviceconfiguration",
    "devices_deviceevent",
]


def naive_summary() -> dict:
    """The summary as one COUNT(*) per figure, on every request (the baseline)."""
    now = timezone.now()
    devices = Device.objects.all()
    serving = devices.in_service()
    pairs = serving.order_by().values_list("device_type", "firmware_version").distinct()
    return {
        "status": {s: devices.filter(status=s).count() for s in DeviceStatus.values},
        "online": serving.filter(presence__online=True).count(),
        "offline": serving.filter(presence__online=False).count(),
        "never": serving.filter(presence__isnull=True).count(),
        "firmware": {
            pair: serving.filter(device_type=pair[0], firmware_version=pair[1]).count()
            for pair in pairs
        },
        "expiring": [expiring(days, at=now).count() for days in figures.CERTIFICATE_WINDOWS],
        "drift": drifted_devices(now=now).count(),
        "alerts": {
            s: Alert.objects.filter(resolved_at__isnull=True, severity=s).count()
            for s in figures.SEVERITIES
        },
        "jobs": [Job.objects.filter(status=s).count() for s in figures.ACTIVE_JOB_STATUSES],
        "rollouts": Rollout.objects.filter(status__in=["running", "paused"]).count(),
        **figures.latest(now),
    }


def timed(run: Callable[[], object], samples: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1]


def get(client, url: str) -> Callable[[], None]:
    def run() -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])

    return run


class Rollback(Exception):
    pass


def measure(client, alerts: int, samples: int) -> list[tuple[str, list[float]]]:
    with connection.cursor() as cur:
        for sql in DATA_SQL:
            cur.execute(sql, {"alerts": alerts})
        for table in TABLES:
            cur.execute(f"ANALYZE {table}")
    print(f"  {Presence.objects.count():,} presence rows,", end=" ")
    print(f"{Alert.objects.filter(resolved_at__isnull=True).count():,} open alerts")
    refresh = timed(services.refresh, max(3, samples // 4), warmup=1)
    return [
        ("GET /api/v1/fleet/summary/ (ours)", timed(get(client, API), samples)),
        ("GET /fleet/ page (ours)", timed(get(client, "/fleet/"), samples)),
        ("naive: COUNT(*) per figure", timed(naive_summary, max(3, samples // 4), warmup=1)),
        ("beat's refresh (set-based counts)", refresh),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()

    client = fleet_data.logged_in_client(args.devices)
    rows = []
    try:
        with override_settings(ALLOWED_HOSTS=["testserver"]), transaction.atomic():
            rows = measure(client, args.alerts, args.samples)
            raise Rollback
    except Rollback:
        pass

    print(f"\n{fleet_data.device_count():,} devices, {args.alerts:,} open alerts, ms\n")
    print("| what | samples | p50 | p95 |")
    print("|---|---:|---:|---:|")
    for name, times in rows:
        print(f"| {name} | {len(times)} | {p(times, 50):.1f} | {p(times, 95):.1f} |")
    ours, naive = rows[0][1], rows[2][1]
    print(f"\nnaive / ours (p50): {p(naive, 50) / p(ours, 50):.0f}x")

    # Issue 14: the summary <= 300 ms at 1,000,000 devices and 100,000 open alerts.
    report.size(devices=fleet_data.device_count(), alerts=args.alerts, samples=args.samples)
    naive_times = rows[2][1]
    for name, times in rows[:2]:
        report.record(
            f"{name}: p95",
            p(times, 95),
            "ms",
            target=300,
            baseline="naive (a COUNT per figure), p95",
            baseline_value=p(naive_times, 95),
        )
    for name, times in rows[2:]:
        report.record(f"{name}: p50", p(times, 50), "ms")


if __name__ == "__main__":
    main()
