#!/usr/bin/env python
"""(a) A job to a fleet: time until every execution exists (with its notify / notify-next in the
outbox), and until a paced job's first minute is published; each against creating the
executions one row at a time in the same run. (c) Pacing over a simulated clock.

    .venv/bin/python bench/jobs.py [--devices 100000] [--baseline 2000] [--rate 1000]

Into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_jobs, made and migrated
when missing) puts --devices active devices in one static group. Then:
- (a) create_job: the job and its targets (one INSERT … SELECT over the group's members);
  release: engine ticks until every target has its QUEUED execution (no rollout config, so
  unthrottled; engine.RELEASE_BATCH per transaction, firmware/release.py) and its notify /
  notify-next rows are in the outbox. The baseline: the same for --baseline devices one at a
  time (an execution row, heads and notifications per device, one transaction each).
- (a) the first minute of a job at --rate maximumPerMinute, through a real Mosquitto: the outbox
  publisher (fleetportal.bridge.publisher, in a thread) publishes while the engine ticks every
  --tick seconds of a simulated clock, back to back, and a subscriber on the backend listener
  counts notify and notify-next as they arrive. Time from create_job until the first device's
  notify arrives, until the first --rate devices' notifications are in the outbox, and until
  all of them arrived; the baseline queues the same number one at a time.
- (c) pacing: a job at --rate maximumPerMinute, the engine ticking every --tick seconds of a
  controllable clock for --minutes: executions released in each minute against the rate.
Part (b), the device protocol through the bridge, is bench/jobs_protocol.py.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench_jobs")

import queue  # noqa: E402
from datetime import timedelta  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import report  # noqa: E402
from bench.broker_support import start_broker  # noqa: E402
from devices.models import Device, DeviceGroup  # noqa: E402
from firmware import engine, jobs, notifications  # noqa: E402
from firmware.models import Job, JobExecution  # noqa: E402
from fleetportal import outbox, topics  # noqa: E402
from fleetportal.bridge.publisher import Publisher  # noqa: E402
from fleetportal.bridge.transport import Connection  # noqa: E402
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


def job_body(job_id: str, **fields) -> dict:
    return {"job_id": job_id, "targets": {"groups": [GROUP]}, "document": {"op": "x"}, **fields}


def bulk() -> tuple[float, float, int]:
    """(create_job s, release s after it, executions)."""
    start = time.perf_counter()
    jobs.create_job(job_body("bench-bulk"), actor="bench")
    created = time.perf_counter()
    while engine.tick().released:
        pass
    return created - start, time.perf_counter() - created, JobExecution.objects.count()


def one_by_one(devices: list[Device]) -> float:
    job = Job.objects.create(job_id="bench-baseline", document={"op": "x"})
    start = time.perf_counter()
    for device in devices:
        with transaction.atomic():
            before = notifications.heads([device.pk])
            JobExecution.objects.create(job=job, device=device, queued_at=timezone.now())
            notifications.send_changes([device.pk], before)
    return time.perf_counter() - start


# --- (a) the first minute, published ------------------------------------------------------------


class Subscriber:
    """Counts the notify and notify-next the broker delivers (QoS 1, acked), noting the time
    of the first and of the `expected`-th."""

    def __init__(self):
        self.connection = Connection("fleetportal.bench.jobs-subscriber", clean_session=True)
        kinds = (topics.JOBS_NOTIFY, topics.JOBS_NOTIFY_NEXT)
        self.connection.subscribe([topics.jobs_filter(kind) for kind in kinds])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._count, daemon=True)
        self.reset(0)

    def reset(self, expected: int) -> None:
        self.count, self.expected = 0, expected
        self.first: float | None = None
        self.all = threading.Event()

    def _count(self) -> None:
        while not self.stop.is_set():
            try:
                received = self.connection.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            self.connection.ack(received)
            self.count += 1
            self.first = self.first or time.perf_counter()
            if self.count >= self.expected:
                self.all.set()

    def __enter__(self):
        self.connection.connect()
        assert self.connection.wait_subscribed(10), "the subscriber did not subscribe"
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.connection.close()


def published(subscriber: Subscriber, messages: int, start: float) -> float:
    """Seconds from `start` until the subscriber has `messages` (raises after a minute)."""
    if not subscriber.all.wait(60):
        raise RuntimeError(f"only {subscriber.count} of {messages} messages arrived")
    return time.perf_counter() - start


def first_minute(rate: int, tick_seconds: int, subscriber: Subscriber) -> dict[str, float]:
    """A job paced at `rate` a minute: the engine ticks over its first minute back to back."""
    subscriber.reset(2 * rate)
    t0 = timezone.now()
    start = time.perf_counter()
    body = job_body("bench-paced", rollout={"maximum_per_minute": rate})
    job = jobs.create_job(body, actor="bench", now=t0)
    second = 0
    while Job.objects.get(pk=job.pk).released_count < rate:
        engine.tick(t0 + timedelta(seconds=second))
        second += tick_seconds
    in_outbox = time.perf_counter() - start
    done = published(subscriber, 2 * rate, start)
    first = (subscriber.first or 0) - start
    return {"first": first, "outbox": in_outbox, "published": done, "ticks": second / tick_seconds}


def first_minute_one_by_one(devices: list[Device], subscriber: Subscriber) -> dict[str, float]:
    subscriber.reset(2 * len(devices))
    start = time.perf_counter()
    one_by_one(devices)
    in_outbox = time.perf_counter() - start
    done = published(subscriber, 2 * len(devices), start)
    return {"first": (subscriber.first or 0) - start, "outbox": in_outbox, "published": done}


def through_the_broker(rate: int, tick_seconds: int, group: DeviceGroup):
    with tempfile.TemporaryDirectory() as directory:
        broker, _ = start_broker(Path(directory))
        stop = threading.Event()
        publisher = Publisher(client_id="fleetportal.bench.jobs-outbox")
        thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
        try:
            with Subscriber() as subscriber:
                thread.start()
                warm_up(subscriber)
                ours = first_minute(rate, tick_seconds, subscriber)
                clean()
                devices = list(Device.objects.filter(group=group).order_by("pk")[:rate])
                theirs = first_minute_one_by_one(devices, subscriber)
                clean()
        finally:
            stop.set()
            thread.join(10)
            broker.terminate()
            broker.wait(10)
    return ours, theirs


def warm_up(subscriber: Subscriber) -> None:
    """One message through the outbox, the publisher and the broker: all of them are up."""
    subscriber.reset(1)
    with transaction.atomic():
        outbox.send(topics.jobs_topic("bench-probe", topics.JOBS_NOTIFY), {"probe": True})
    if not subscriber.all.wait(30):
        raise RuntimeError("the outbox publisher delivered nothing in 30 s")


# --- (c) pacing ---------------------------------------------------------------------------------


def pacing(rate: int, minutes: int, tick_seconds: int) -> list[int]:
    """(c) Executions released in each minute of a job paced at `rate` per minute."""
    t0 = timezone.now()
    body = job_body("bench-paced", rollout={"maximum_per_minute": rate})
    jobs.create_job(body, actor="bench", now=t0)
    per_minute = [0] * minutes
    for second in range(0, minutes * 60, tick_seconds):
        per_minute[second // 60] += engine.tick(t0 + timedelta(seconds=second)).released
    return per_minute


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=1000, help="maximumPerMinute")
    parser.add_argument("--minutes", type=int, default=5, help="(c) simulated minutes")
    parser.add_argument("--tick", type=int, default=5, help="seconds between ticks (simulated)")
    options = parser.parse_args()
    call_command("ensuredb", verbosity=0)
    call_command("migrate", verbosity=0)
    group = fleet(options.devices)
    clean()
    created, released, count = bulk()
    in_outbox = OutboxMessage.objects.count()
    clean()
    sample = list(Device.objects.filter(group=group).order_by("pk")[: options.baseline])
    baseline = one_by_one(sample)
    clean()
    ours, theirs = count / released, len(sample) / baseline
    print(f"(a) {count:,} devices, {os.cpu_count()} CPUs, {engine.RELEASE_BATCH:,} per transaction")
    print("| what | result |\n|---|---:|")
    print(f"| `create_job` (job + {count:,} targets) | {created:.2f} s |")
    what = f"then all executions and {in_outbox:,} notifications"
    print(f"| {what} | {released:.2f} s ({ours:,.0f}/s) |")
    print(f"| together | {created + released:.2f} s |")
    print(
        f"| baseline, one at a time ({len(sample):,}) | {theirs:,.0f}/s "
        f"({count / theirs:,.0f} s for {count:,}) |"
    )
    print(f"| ratio | {ours / theirs:.0f}x |")

    bulk_minute, slow_minute = through_the_broker(options.rate, options.tick, group)
    print(
        f"\n(a) the first minute at {options.rate:,}/min through Mosquitto "
        f"({bulk_minute['ticks']:.0f} ticks of a simulated clock, back to back)"
    )
    print("| from `create_job` until | engine | one at a time |\n|---|---:|---:|")
    for key, what in (
        ("first", "the first device's notify arrived"),
        ("outbox", f"{options.rate:,} devices' notify + notify-next in the outbox"),
        ("published", f"all {2 * options.rate:,} arrived at the subscriber"),
    ):
        print(f"| {what} | {bulk_minute[key]:.2f} s | {slow_minute[key]:.2f} s |")

    per_minute = pacing(options.rate, options.minutes, options.tick)
    clean()
    print(f"\n(c) pacing at {options.rate:,}/min, a tick every {options.tick} s (simulated clock)")
    print("| minute | released | off the rate |")
    print("|---:|---:|---:|")
    for minute, in_minute in enumerate(per_minute, start=1):
        off = 100 * (in_minute - options.rate) / options.rate
        print(f"| {minute} | {in_minute:,} | {off:+.1f} % |")
    total, expected = sum(per_minute), options.rate * options.minutes
    print(f"| all | {total:,} | {100 * (total - expected) / expected:+.2f} % |")

    report.size(devices=count, baseline_devices=len(sample), rate_per_minute=options.rate)
    # Issue 12: <= 10 s for 100,000 executions; pacing within 2 % of the rate.
    report.record("create_job (the job and its targets)", created, "s")
    report.record(
        "create_job + every execution released, with notifications",
        created + released,
        "s",
        target=10,
        baseline="one at a time, extrapolated",
        baseline_value=count / theirs,
    )
    report.record(
        "executions released per second",
        ours,
        "/s",
        baseline="one at a time",
        baseline_value=theirs,
    )
    for key, what in (
        ("first", "paced job: the first device's notify arrived"),
        ("published", "paced job: the first minute's notifications all arrived"),
    ):
        report.record(
            what, bulk_minute[key], "s", baseline="one at a time", baseline_value=slow_minute[key]
        )
    report.record(
        "pacing: off the rate, over the simulated minutes",
        abs(100 * (total - expected) / expected),
        "%",
        better=report.LOWER,
        target=2,
        minutes=options.minutes,
    )


if __name__ == "__main__":
    main()
