#!/usr/bin/env python
"""Pushing a group's configuration change to its members, batched against one by one.

    .venv/bin/python bench/configuration.py [--devices 20000]

Into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_configuration, made and
migrated when missing) registers --devices devices in one static group. Then, in the same run:
- the check a change makes before anything is written (every member's configuration must fit);
- the baseline: the change rendered one device at a time, through the shadow service's
  set_desired and one DeviceConfiguration upsert per device (what the code did first);
- the batched render (`render_group`: 500 devices per transaction, one bulk shadow write);
- a no-op render (nothing changed: what the reconcile costs per device);
- the production path: the fan-out task on a real Celery worker with 1 and 2 processes.
Each change sets a new key, so both paths do the same work: one shadow version, history row and
three replies per device. Prints devices per second and the ratio.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench_configuration")

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from bench import report  # noqa: E402
from devices import services as devices  # noqa: E402
from devices.models import Device, DeviceGroup  # noqa: E402
from shadows import services as shadows  # noqa: E402
from shadows.configuration import CONFIG_SHADOW  # noqa: E402
from shadows.configuration import services as config  # noqa: E402
from shadows.configuration.layering import effective, rendered  # noqa: E402
from shadows.models import ConfigValue, DeviceConfiguration, Shadow  # noqa: E402
from shadows.tasks import render_group_configuration  # noqa: E402

GROUP = "bench-configuration"


def ensure_database() -> None:
    call_command("ensuredb", verbosity=0)
    call_command("migrate", verbosity=0)


def fleet(size: int) -> DeviceGroup:
    group, _ = DeviceGroup.objects.get_or_create(name=GROUP)
    have = Device.objects.filter(group=group).count()
    rows = [
        {"device_id": f"cfg-{n:07d}", "device_type": "sensor", "group": group}
        for n in range(have, size)
    ]
    for start in range(0, len(rows), 5000):
        devices.register_devices(rows[start : start + 5000], actor="bench")
    return group


def clean(group: DeviceGroup) -> None:
    """Start from no configuration, so every run does the same work."""
    ConfigValue.objects.filter(group=group).delete()
    DeviceConfiguration.objects.filter(device__group=group).delete()
    Shadow.objects.filter(device__group=group, name=CONFIG_SHADOW).delete()


def set_without_render(group: DeviceGroup, key: str, value) -> None:
    """Store a value as set_value does, without pushing it (each path below pushes it)."""
    ConfigValue.objects.update_or_create(
        group=group, key=key, defaults={"value": value, "updated_by": "bench", "version": 1}
    )


def one_by_one(group: DeviceGroup) -> int:
    """The baseline: one shadow update and one upsert per device."""
    members = list(config.affected_devices(group=group).order_by("pk"))
    for start in range(0, len(members), config.RENDER_BATCH):
        chunk = members[start : start + config.RENDER_BATCH]
        layers = config.layers_of(chunk)
        with transaction.atomic():
            for device in chunk:
                configuration = effective(*layers[device.pk])
                shadow = shadows.set_desired(
                    device, CONFIG_SHADOW, rendered(configuration), actor="bench"
                ).shadow
                for key, entry in configuration.items():
                    DeviceConfiguration.objects.update_or_create(
                        device=device,
                        config_key=key,
                        defaults={
                            "config_value": entry.value,
                            "version": entry.version,
                            "source_group_id": entry.source_group_id,
                            "applied": shadow.reported_state.get(key) == entry.value,
                        },
                    )
    return len(members)


def fanned_out(group: DeviceGroup, key: str, size: int, processes: int) -> float:
    """The production path for a big group: render_group_configuration on a real Celery worker
    (prefork, `processes` processes), one task per batch; done when every member has the key."""
    queue = f"bench-configuration-{os.getpid()}"
    worker = subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "celery"),
            *("-A", "fleetportal", "worker", "-Q", queue, "--concurrency", str(processes)),
            *("--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "WARNING"),
        ],
        env=os.environ,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        time.sleep(5)  # the worker's processes start
        start = time.perf_counter()
        render_group_configuration.apply_async((str(group.pk), "bench"), queue=queue)
        done = DeviceConfiguration.objects.filter(device__group=group, config_key=key)
        while done.count() < size:
            time.sleep(0.2)
        return time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(30)


def timed(label: str, work, devices_count: int) -> tuple[str, float, float]:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    return label, seconds, devices_count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    args = parser.parse_args()
    ensure_database()
    group = fleet(args.devices)
    clean(group)
    size = config.affected_devices(group=group).count()
    run = int(time.time())

    rows = [timed("check before writing", lambda: config.preview(f"k{run}c", 1, group=group), size)]
    set_without_render(group, f"k{run}a", "baseline")
    rows.append(timed("one by one (baseline)", lambda: one_by_one(group), size))
    set_without_render(group, f"k{run}b", "batched")
    rows.append(
        timed("batched render_group", lambda: config.render_group(group, actor="bench"), size)
    )
    rows.append(
        timed("no-op render (reconcile)", lambda: config.render_group(group, actor="bench"), size)
    )
    for processes in (1, 2):
        key = f"k{run}w{processes}"
        set_without_render(group, key, processes)
        seconds = fanned_out(group, key, size, processes)
        rows.append((f"Celery fan-out, {processes} process(es)", seconds, size / seconds))

    print(f"\nPushing one group value to {size:,} devices\n")
    print(f"{'path':<28} {'seconds':>9} {'devices/s':>11}")
    for label, seconds, rate in rows:
        print(f"{label:<28} {seconds:>9.2f} {rate:>11,.0f}")
    print(f"\nbatched / one by one: {rows[2][2] / rows[1][2]:.1f}x")
    record(rows, size)


def record(rows: list[tuple[str, float, float]], size: int) -> None:
    """Devices/s of each path, the batched ones against one by one, and a second Celery worker
    process against one (what more worker cores buy)."""
    report.size(devices=size)
    rates = {label: rate for label, _, rate in rows}
    one_by_one, one_worker = "one by one (baseline)", "Celery fan-out, 1 process(es)"
    for label, _, rate in rows:
        if label in ("check before writing", one_by_one):
            report.record(label, rate, "/s")
            continue
        baseline = one_worker if label == "Celery fan-out, 2 process(es)" else one_by_one
        report.record(label, rate, "/s", baseline=baseline, baseline_value=rates[baseline])


if __name__ == "__main__":
    main()
