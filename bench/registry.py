#!/usr/bin/env python
"""Registry list pages at fleet scale, against Django's stock defaults measured in the same run.

    .venv/bin/python bench/registry.py [--devices 1000000] [--samples 30]

Loads the fleet once into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench),
then times each page in-process with Django's test client (server time: routing, queries,
rendering) after warm-up requests, and prints p50/p95 per page and the stock/ours ratio.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench")

from django.test import Client, override_settings  # noqa: E402
from rest_framework.pagination import Cursor, CursorPagination  # noqa: E402

from bench import fleet_data, report  # noqa: E402
from devices.models import Device  # noqa: E402

DEEP = 500_000  # rows skipped before the "deep" API page (half the fleet when it is smaller)


def timed(client: Client, url: str, samples: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, url
    return times


def p(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1]


def deep_cursor_url(deep: int) -> str:
    """The URL of the API page that starts `deep` devices into the newest-first order."""
    created_at = Device.objects.order_by("-created_at").values_list("created_at", flat=True)[deep]
    paginator = CursorPagination()
    paginator.base_url = "/api/v1/devices/"
    return paginator.encode_cursor(Cursor(offset=0, reverse=False, position=str(created_at)))


def pages(deep: int) -> list[tuple[str, str, str]]:
    """(name, our URL, the stock-defaults URL of the same page)."""
    page = deep // 50 + 1
    return [
        ("admin changelist, first page", "/admin/devices/device/", "/stock-admin/devices/device/"),
        (
            "admin changelist, status=maintenance",
            "/admin/devices/device/?status__exact=maintenance",
            "/stock-admin/devices/device/?status__exact=maintenance",
        ),
        (
            "admin changelist, search 'SN-00421'",
            "/admin/devices/device/?q=SN-00421",
            "/stock-admin/devices/device/?q=SN-00421",
        ),
        ("API devices, first page", "/api/v1/devices/", "/stock-api/devices/"),
        ("API devices, a deep page", deep_cursor_url(deep), f"/stock-api/devices/?page={page}"),
        (
            "API devices, metadata has key",
            "/api/v1/devices/?metadata_has_key=battery_pack",
            "/stock-api/devices/?metadata_has_key=battery_pack",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()

    client = fleet_data.logged_in_client(args.devices)
    deep = min(DEEP, fleet_data.device_count() // 2)

    rows = []
    with override_settings(ROOT_URLCONF="bench.stock_urls", ALLOWED_HOSTS=["testserver"]):
        for name, ours_url, stock_url in pages(deep):
            ours = timed(client, ours_url, args.samples)
            stock = timed(client, stock_url, args.samples)
            rows.append((name, p(ours, 50), p(ours, 95), p(stock, 50), p(stock, 95)))

    print(
        f"\n{fleet_data.device_count():,} devices, {args.samples} samples per page, "
        f"the deep page {deep:,} rows in; ms\n"
    )
    print("| page | p50 | p95 | stock p50 | stock p95 | stock p95 / ours |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, p50, p95, s50, s95 in rows:
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {s50:.1f} | {s95:.1f} | {s95 / p95:.1f}x |")
    record(rows, args.samples, deep)


def record(rows: list[tuple], samples: int, deep: int) -> None:
    """Issue 2's targets: an admin changelist p95 <= 300 ms and >= 5x faster than the stock
    defaults; an API page p95 <= 50 ms."""
    report.size(devices=fleet_data.device_count(), samples=samples, deep_page_rows=deep)
    for name, _, p95, _, s95 in rows:
        admin = name.startswith("admin")
        report.record(
            f"{name}: p95",
            p95,
            "ms",
            target=300 if admin else 50,
            ratio_target=5 if admin else None,
            baseline="stock defaults, p95",
            baseline_value=s95,
        )


if __name__ == "__main__":
    main()
