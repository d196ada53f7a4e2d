#!/usr/bin/env python
"""Dynamic group preview at fleet scale, with and without the filters' indexes in the same run.

    .venv/bin/python bench/groups.py [--devices 1000000] [--samples 20]

Loads the fleet once into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench, as
bench/registry.py), then, inside one transaction that is rolled back at the end (nothing it
writes or drops survives): gives 100,000 devices a classic shadow with a battery value, moves
5,000 devices to a canary firmware, and times POST /api/v1/groups/preview/ (count + newest 20,
through Django's test client) for each filter — first with every index, then with the filter's
supporting indexes dropped inside a savepoint (PostgreSQL DDL is transactional). Prints p50/p95
per filter and the ratio.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench")

from django.db import connection, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from bench import fleet_data, report  # noqa: E402

URL = "/api/v1/groups/preview/"
SHADOWS = 100_000
CANARY_EVERY = 200  # every 200th device runs the canary firmware: 5,000 of 1,000,000

# 10% of the devices get a classic shadow; battery 0..99, so ~20% of those are below 20.
SHADOWS_SQL = """
INSERT INTO shadows_shadow (
    id, device_id, name, desired_state, reported_state, metadata, version, live,
    deleted_at, last_client_token, created_at, updated_at
)
SELECT gen_random_uuid(), d.id, '', '{}',
       jsonb_build_object('battery', mod(hashtext(d.device_id || '/b')::bigint + 2147483648, 100)),
       '{}', 1, true, NULL, '', now(), now()
FROM devices_device d
WHERE mod(hashtext(d.device_id)::bigint + 2147483648, 10) = 0
LIMIT %s
ON CONFLICT DO NOTHING
"""
CANARY_SQL = """
UPDATE devices_device SET firmware_version = '2.2.0'
WHERE device_id ~ '^dev-[0-9]+$' AND mod(substr(device_id, 5)::int, %s) = 0
"""
# The fleet was loaded hours ago: bring the devices seen in the last 5 minutes of the load up to
# now, so "online" (seen within DEVICE_ONLINE_WINDOW_SECONDS) matches ~1,700 devices.
ONLINE_SQL = """
WITH latest AS (SELECT max(last_seen) AS at FROM devices_device)
UPDATE devices_device SET last_seen = clock_timestamp() - (latest.at - last_seen)
FROM latest WHERE last_seen >= latest.at - interval '5 minutes'
"""

# (name, filter document, indexes it relies on, SQL to run right before measuring)
FILTERS = [
    (
        "device_type eq + status in",
        {
            "all": [
                {"field": "device_type", "op": "eq", "value": "camera"},
                {"field": "status", "op": "in", "value": ["maintenance", "registered"]},
            ]
        },
        ["device_type_idx", "device_status_created_idx"],
        None,
    ),
    (
        'firmware_version gt "2.1.0" (canary, 0.5%)',
        {"field": "firmware_version", "op": "gt", "value": "2.1.0"},
        ["device_firmware_parts_idx"],
        None,
    ),
    (
        'firmware_version gt "1.9.3" (75%)',
        {"field": "firmware_version", "op": "gt", "value": "1.9.3"},
        ["device_firmware_parts_idx"],
        None,
    ),
    (
        "metadata.battery_pack eq (1%)",
        {"field": "metadata.battery_pack", "op": "eq", "value": "li-ion"},
        ["device_metadata_gin"],
        None,
    ),
    (
        "online true",
        {"field": "online", "op": "eq", "value": True},
        ["device_last_seen_idx"],
        ONLINE_SQL,
    ),
    (
        "reported.battery lt 20, any/not",
        {
            "all": [
                {
                    "any": [
                        {"field": "reported.battery", "op": "lt", "value": 20},
                        {"field": "metadata.battery_pack", "op": "exists"},
                    ]
                },
                {"not": {"field": "status", "op": "in", "value": ["decommissioned"]}},
            ]
        },
        ["shadows_shadow_device_id_*", "device_metadata_gin"],
        None,
    ),
]


def timed(client: Client, document: dict, samples: int, warmup: int = 3) -> tuple[list, dict]:
    body = json.dumps({"filters": document})
    for _ in range(warmup):
        response = client.post(URL, body, content_type="application/json")
        assert response.status_code == 200, (response.status_code, response.content[:300])
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        response = client.post(URL, body, content_type="application/json")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return times, response.json()


def p(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1]


def drop_indexes(patterns: list[str]) -> list[str]:
    """Drops the named indexes (and the shadow (device, name) unique constraint with the
    shadow device index, which both serve the reported.* semi-join); returns what was dropped."""
    dropped = []
    with connection.cursor() as cur:
        for pattern in patterns:
            cur.execute(
                "SELECT indexname FROM pg_indexes"
                " WHERE schemaname = 'public' AND indexname LIKE %s",
                [pattern.replace("*", "%")],
            )
            for (name,) in cur.fetchall():
                cur.execute(f'DROP INDEX "{name}"')
                dropped.append(name)
            if pattern.startswith("shadows_shadow"):
                cur.execute("ALTER TABLE shadows_shadow DROP CONSTRAINT shadow_unique_device_name")
                dropped.append("shadow_unique_device_name")
    return dropped


class Rollback(Exception):
    pass


def measure(client, samples: int) -> list[tuple]:
    rows = []
    with connection.cursor() as cur:
        cur.execute(SHADOWS_SQL, [SHADOWS])
        cur.execute(CANARY_SQL, [CANARY_EVERY])
        # Check the deferred foreign keys now: a table with pending checks cannot be altered.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ANALYZE devices_device")
        cur.execute("ANALYZE shadows_shadow")
    for name, document, indexes, prepare in FILTERS:
        results = {}
        for mode in ("indexed", "dropped"):
            try:
                with transaction.atomic():
                    dropped = drop_indexes(indexes) if mode == "dropped" else []
                    if prepare:
                        with connection.cursor() as cur:
                            cur.execute(prepare)
                    times, body = timed(client, document, samples)
                    results[mode] = (times, body, dropped)
                    raise Rollback
            except Rollback:
                pass
        (ours, body, _), (without, _, dropped) = results["indexed"], results["dropped"]
        count = f"{'~' if body['count_is_approximate'] else ''}{body['count']:,}"
        rows.append((name, count, ours, without, dropped))
        print(f"  {name}: {count} matches, p95 {p(ours, 95):.1f} / {p(without, 95):.1f} ms")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()

    client = fleet_data.logged_in_client(args.devices)

    rows = []
    try:
        with override_settings(ALLOWED_HOSTS=["testserver"]), transaction.atomic():
            rows = measure(client, args.samples)
            raise Rollback
    except Rollback:
        pass

    print(f"\n{fleet_data.device_count():,} devices, {args.samples} samples per filter, ms\n")
    print("| filter | matches | p50 | p95 | no index p50 | no index p95 | p95 ratio | dropped |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, count, ours, without, dropped in rows:
        print(
            f"| {name} | {count} | {p(ours, 50):.1f} | {p(ours, 95):.1f} | "
            f"{p(without, 50):.1f} | {p(without, 95):.1f} | "
            f"{p(without, 95) / p(ours, 95):.1f}x | {', '.join(dropped)} |"
        )
    # Issue 5: p95 <= 500 ms for indexed filters.
    report.size(devices=fleet_data.device_count(), samples=args.samples)
    for name, count, ours, without, _ in rows:
        report.record(
            f"preview {name}: p95",
            p(ours, 95),
            "ms",
            target=500,
            baseline="its indexes dropped, p95",
            baseline_value=p(without, 95),
            note=f"{count} matches",
        )


if __name__ == "__main__":
    main()
