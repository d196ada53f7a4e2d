#!/usr/bin/env python
"""Alert rule evaluation at fleet scale: one statement per rule vs a per-device loop, same run.

    .venv/bin/python bench/alerts.py [--devices 200000] [--baseline 2000]

Loads the fleet once into a scratch database (BENCH_DATABASE_URL, as bench/registry.py), then,
inside one transaction rolled back at the end: gives every device a classic shadow whose battery
is below 15 for half of them, and times monitoring.alerts.evaluation.evaluate for a rule
"reported.battery lt 15 for 10 minutes" (with a webhook, so deliveries are written too) through
its phases — the conditions start holding, a tick while they hold, the tick that raises every
alert (alerts, device events and webhook deliveries), a tick with every alert open, the tick that
resolves them all. The baseline does what a per-device implementation does (a query or two per
device and per write, through the ORM) for `--baseline` devices, scaled to the same count.
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench")

from django.db import connection, transaction  # noqa: E402

from bench import fleet_data, report  # noqa: E402
from devices.group_filters import compile_filters  # noqa: E402
from devices.models import Device, DeviceEvent  # noqa: E402
from monitoring.alerts.evaluation import evaluate  # noqa: E402
from monitoring.models import Alert, AlertCondition, AlertRule  # noqa: E402

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
LOW = {"field": "reported.battery", "op": "lt", "value": 15}

SHADOWS_SQL = """
INSERT INTO shadows_shadow (
    id, device_id, name, desired_state, reported_state, metadata, version, live,
    deleted_at, last_client_token, created_at, updated_at
)
SELECT gen_random_uuid(), d.id, '',  '{}',
       jsonb_build_object('battery', CASE WHEN mod(hashtext(d.device_id)::bigint, 2) = 0
                                          THEN 5 ELSE 80 END),
       '{}', 1, true, NULL, '', now(), now()
FROM devices_device d
ON CONFLICT DO NOTHING
"""
CHARGED_SQL = "UPDATE shadows_shadow SET reported_state = '{\"battery\": 90}' WHERE name = ''"


class Rollback(Exception):
    pass


def none(metric, window, now):
    return {}


def timed(label: str, minutes: int, rows: list) -> None:
    start = time.perf_counter()
    report = evaluate(T0 + datetime.timedelta(minutes=minutes), values=none)
    seconds = time.perf_counter() - start
    rows.append((label, report.raised, report.resolved, seconds))
    changes = f"{report.raised:,} raised, {report.resolved:,} resolved"
    print(f"  {label}: {seconds * 1000:,.0f} ms ({changes})", flush=True)


def per_device(rule: AlertRule, limit: int) -> float:
    """What evaluating one device at a time costs: the rule's raise for `limit` devices."""
    devices = list(
        Device.objects.in_service()
        .filter(compile_filters(rule.filter))
        .values_list("pk", flat=True)[:limit]
    )
    now = T0 + datetime.timedelta(minutes=20)
    start = time.perf_counter()
    with transaction.atomic():
        for pk in devices:
            AlertCondition.objects.get_or_create(
                rule=rule, device_id=pk, defaults={"holding_since": T0}
            )
            if not Alert.objects.filter(rule=rule, device_id=pk, resolved_at__isnull=True).exists():
                alert = Alert.objects.create(
                    rule=rule, device_id=pk, severity=rule.severity, raised_at=now
                )
                DeviceEvent.objects.create(
                    device_id=pk,
                    event_type="alert_raised",
                    event_data={"alert": alert.pk},
                    actor="system",
                )
        seconds = time.perf_counter() - start
        transaction.set_rollback(True)
    return seconds / max(len(devices), 1)


def measure(baseline: int) -> tuple[list, int, float]:
    with connection.cursor() as cursor:
        cursor.execute(SHADOWS_SQL)
        cursor.execute("ANALYZE shadows_shadow")
    rule = AlertRule.objects.create(
        name="bench: low battery", filter=LOW, for_seconds=600,
        webhook_url="https://hooks.example.com/alerts",
    )  # fmt: skip
    matching = Device.objects.in_service().filter(compile_filters(LOW)).count()
    rows: list = []
    timed("conditions start holding", 0, rows)
    timed("still holding, before 10 min", 5, rows)
    timed("raise (alerts + events + deliveries)", 10, rows)
    timed("steady, every alert open", 11, rows)
    with connection.cursor() as cursor:
        cursor.execute(CHARGED_SQL)
    timed("resolve all", 12, rows)
    Alert.objects.filter(rule=rule).delete()
    AlertCondition.objects.filter(rule=rule).delete()
    return rows, matching, per_device(rule, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    args = parser.parse_args()
    fleet_data.logged_in_client(args.devices)

    try:
        with transaction.atomic():
            rows, matching, per_device_seconds = measure(args.baseline)
            raise Rollback
    except Rollback:
        pass

    print(f"\n{fleet_data.device_count():,} devices, {matching:,} matching the rule\n")
    print("| evaluation | raised | resolved | ms | per-device loop, ms (scaled) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, raised, resolved, seconds in rows:
        changed = raised or resolved
        if changed:
            loop = per_device_seconds * changed * 1000
            extra = f"{loop:,.0f} | {loop / (seconds * 1000):.0f}x"
        else:
            extra = "- | -"
        print(f"| {label} | {raised:,} | {resolved:,} | {seconds * 1000:,.0f} | {extra} |")
    record(rows, per_device_seconds, matching, args.baseline)


def record(rows: list, per_device_seconds: float, matching: int, baseline: int) -> None:
    """Each evaluation's time; a raise or resolve against the per-device loop, scaled."""
    report.size(devices=fleet_data.device_count(), matching=matching, baseline_devices=baseline)
    for label, raised, resolved, seconds in rows:
        changed = raised or resolved
        report.record(
            label,
            seconds * 1000,
            "ms",
            baseline="per-device loop, scaled" if changed else None,
            baseline_value=per_device_seconds * changed * 1000 if changed else None,
            note=f"{raised:,} raised, {resolved:,} resolved",
        )


if __name__ == "__main__":
    main()
