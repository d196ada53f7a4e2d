#!/usr/bin/env python
"""(a) A job to a fleet: time until every execution exists (with its notify / notify-next in the
outbox), against creating them one row at a time in the same run.

    .venv/bin/python bench/jobs.py [--devices 100000] [--baseline 5000]

Into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_jobs, made and migrated
when missing) puts --devices active devices in one static group. Then:
- create_job: the job and its targets (one INSERT … SELECT over the group's members);
- release: engine ticks until every target has its QUEUED execution (no rollout config, so
  unthrottled; 5,000 per transaction: one UPDATE … RETURNING on the targets, one bulk INSERT of
  executions, the devices' heads before and their notify / notify-next after);
- the baseline: the same for --baseline devices one at a time (an execution row, heads and
  notifications per device, one transaction each), as devices per second.
- (c) pacing: a job at --rate maximumPerMinute, the engine ticking every --tick seconds of a
  controllable clock for --minutes: executions released in each minute against the rate.
Part (b), the device protocol through the bridge, is bench/jobs_protocol.py.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("FLEETPORTAL_SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("FLEETPORTAL_LOG_LEVEL", "WARNING")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_jobs"
)
os.environ["DJANGO_SETTINGS_MODULE"] = "fleetportal.settings"

import django

django.setup()

from datetime import timedelta  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from devices.models import Device, DeviceGroup  # noqa: E402
from firmware import engine, jobs, notifications  # noqa: E402
from firmware.models import Job, JobExecution  # noqa: E402
from fleetportal.models import OutboxMessage  # noqa: E402

GROUP = "bench-jobs"


def fleet(size: int) -> DeviceGroup:
    group, _ = DeviceGroup.objects.get_or_create(name=GROUP)
    have = Device.objects.filter(group=group).count()
    rows = [
        Device(device_id=f"job-{n:07d}", device_type="sensor", status="active", group=group)
        for n in range(have, size)
    ]
    Device.objects.bulk_create(rows, batch_size=5000)
    return group


def clean() -> None:
    """Empty the jobs and the outbox. TRUNCATE, not DELETE: the CI's PostgreSQL runs without
    autovacuum, so deleted rows would stay as dead tuples and slow every later run."""
    name = connection.settings_dict["NAME"]
    assert "bench" in name, f"refusing to empty {name}: not a bench database"
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE firmware_job, fleetportal_outboxmessage CASCADE")


def bulk(group: DeviceGroup) -> tuple[float, float, int]:
    start = time.perf_counter()
    body = {"job_id": "bench-bulk", "targets": {"groups": [GROUP]}, "document": {"op": "x"}}
    jobs.create_job(body, actor="bench")
    created = time.perf_counter() - start
    while engine.tick().released:
        pass
    return created, time.perf_counter() - start, JobExecution.objects.count()


def one_by_one(devices: list[Device]) -> float:
    job = Job.objects.create(job_id="bench-baseline", document={"op": "x"})
    start = time.perf_counter()
    for device in devices:
        with transaction.atomic():
            before = notifications.heads([device.pk])
            JobExecution.objects.create(job=job, device=device, queued_at=timezone.now())
            notifications.send_changes([device.pk], before)
    return time.perf_counter() - start


def pacing(rate: int, minutes: int, tick_seconds: int) -> list[int]:
    """(c) Executions released in each minute of a job paced at `rate` per minute."""
    t0 = timezone.now()
    body = {
        "job_id": "bench-paced",
        "targets": {"groups": [GROUP]},
        "document": {"op": "x"},
        "rollout": {"maximum_per_minute": rate},
    }
    jobs.create_job(body, actor="bench", now=t0)
    per_minute = [0] * minutes
    for second in range(0, minutes * 60, tick_seconds):
        per_minute[second // 60] += engine.tick(t0 + timedelta(seconds=second)).released
    return per_minute


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=1000, help="(c) maximumPerMinute")
    parser.add_argument("--minutes", type=int, default=5, help="(c) simulated minutes")
    parser.add_argument("--tick", type=int, default=5, help="(c) seconds between ticks")
    options = parser.parse_args()
    call_command("ensuredb", verbosity=0)
    call_command("migrate", verbosity=0)
    group = fleet(options.devices)
    clean()
    created, released, count = bulk(group)
    outbox = OutboxMessage.objects.count()
    clean()
    sample = list(Device.objects.filter(group=group).order_by("pk")[: options.baseline])
    baseline = one_by_one(sample)
    clean()
    ours, theirs = count / released, len(sample) / baseline
    print(f"{'devices':>10} {'targets s':>10} {'executions s':>13} {'per s':>9} {'outbox':>9}")
    print(f"{count:>10,} {created:>10.2f} {released:>13.2f} {ours:>9,.0f} {outbox:>9,}")
    print(f"baseline one row at a time: {len(sample):,} in {baseline:.2f} s = {theirs:,.0f}/s")
    print(f"ratio: {ours / theirs:.1f}x; 100,000 one at a time would take {100_000 / theirs:.0f} s")

    per_minute = pacing(options.rate, options.minutes, options.tick)
    clean()
    print(f"\n(c) pacing at {options.rate:,}/min, a tick every {options.tick} s (simulated clock)")
    print("| minute | released | off the rate |")
    print("|---:|---:|---:|")
    for minute, released in enumerate(per_minute, start=1):
        print(
            f"| {minute} | {released:,} | {100 * (released - options.rate) / options.rate:+.1f} % |"
        )
    total, expected = sum(per_minute), options.rate * options.minutes
    print(f"| all | {total:,} | {100 * (total - expected) / expected:+.2f} % |")


if __name__ == "__main__":
    main()
