#!/usr/bin/env python
"""The jobs device protocol end to end: devices → Mosquitto → bridge → PostgreSQL → replies.

    .venv/bin/python bench/jobs_protocol.py [--devices 100] [--jobs 100] [--seconds 10]

Each simulated device (paho, mTLS, a certificate from a throwaway CA) works through its queue as
firmware written against the AWS IoT Jobs client does: `start-next`, `update` IN_PROGRESS with
statusDetails, `update` SUCCEEDED, the next `start-next` — one request in flight per device, each
answered on …/accepted. Every SUCCEEDED also queues `notify` and `notify-next`. Two runs in this
process:

1. the raw relay (the ceiling): the same requests answered Mosquitto → paho → Mosquitto with the
   shortest accepted reply a device would take, no database;
2. the bridge (`manage.py runbridge`, a separate process): the real protocol on rows.

Prints requests/s (start-next and both updates), updates/s (the updates alone) and p50/p99 of
publish → accepted. Uses the shadow bench's scratch database (BENCH_DATABASE_URL).
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import shadows  # noqa: I001  (sets Django up against the bench database first)

import orjson
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bench.broker_support import start_broker
from devices import services
from devices.choices import DeviceStatus
from devices.models import Device
from firmware.models import Job, JobExecution
from fleetportal import topics

REQUEST_KINDS = (topics.JOBS_START_NEXT, topics.JOBS_UPDATE)


def empty_tables() -> None:
    shadows.empty_tables()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE firmware_jobexecution, firmware_job CASCADE")


def queue_work(devices: list[Device], jobs: int) -> None:
    """`jobs` jobs, each QUEUED for every device: the queue each device works through."""
    now = timezone.now()
    created = Job.objects.bulk_create(
        Job(job_id=f"bench-{n:04d}", document={"operation": "bench", "step": n})
        for n in range(jobs)
    )
    JobExecution.objects.bulk_create(
        (
            JobExecution(job=job, device=device, queued_at=now + timedelta(seconds=n))
            for n, job in enumerate(created)
            for device in devices
        ),
        batch_size=5_000,
    )


class JobsDevice:
    """A device running its jobs one after another; times each request to its reply."""

    def __init__(self, device_id: str, directory: Path, load: "Load"):
        self.device_id = device_id
        self.load = load
        self.seq = 0
        self.pending: tuple[str, float, str] | None = None  # (token, sent at, step)
        self.job_topic = ""
        self.lock = threading.Lock()
        self.client = shadows.device_client(device_id, directory, self.on_message)
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        replies = [topics.jobs_topic(device_id, topics.JOBS_START_NEXT, reply="accepted")]
        # The SDK's jobs client subscribes to {jobId}/update/+ per job; one wildcard here.
        update_filter = topics.jobs_filter(topics.JOBS_UPDATE).replace("/+/", f"/{device_id}/", 1)
        self.client.subscribe([(r, 1) for r in (*replies, update_filter + "/accepted")])
        assert done.wait(10)

    def send(self, topic: str, body: dict, step: str) -> None:
        with self.lock:
            self.seq += 1
            token = f"{self.device_id}-{self.seq}"
            self.pending = (token, time.perf_counter(), step)
        self.client.publish(topic, orjson.dumps({**body, "clientToken": token}), qos=1)

    def start_next(self) -> None:
        self.send(topics.jobs_topic(self.device_id, topics.JOBS_START_NEXT), {}, "start-next")

    def on_message(self, client, userdata, message) -> None:
        now = time.perf_counter()
        reply = orjson.loads(message.payload)
        with self.lock:
            if self.pending is None or reply.get("clientToken") != self.pending[0]:
                return
            _, sent, step = self.pending
            self.pending = None
        self.load.done(step, now - sent)
        if self.load.stopping:
            return
        if step == "start-next":
            execution = reply.get("execution")
            if execution is None:
                self.load.exhausted += 1
                return
            self.job_topic = topics.jobs_topic(
                self.device_id, topics.JOBS_UPDATE, execution["jobId"]
            )
            body = {"status": "IN_PROGRESS", "statusDetails": {"step": "downloading"}}
            self.send(self.job_topic, body, "in-progress")
        elif step == "in-progress":
            self.send(self.job_topic, {"status": "SUCCEEDED"}, "succeeded")
        else:
            self.start_next()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Load:
    def __init__(self):
        self.devices: list[JobsDevice] = []
        self.latencies: dict[str, list[float]] = {}
        self.counting = False
        self.stopping = False
        self.exhausted = 0
        self.lock = threading.Lock()

    def done(self, step: str, latency: float) -> None:
        if self.counting:
            with self.lock:
                self.latencies.setdefault(step, []).append(latency)

    def run(self, seconds: float, warmup: float = 2.0) -> tuple[float, dict[str, list[float]]]:
        self.stopping, self.exhausted = False, 0
        for device in self.devices:
            device.start_next()
        time.sleep(warmup)
        self.latencies, self.counting = {}, True
        start = time.perf_counter()
        time.sleep(seconds)
        self.counting = False
        elapsed = time.perf_counter() - start
        self.stopping = True
        time.sleep(1.0)  # the last replies
        return elapsed, {step: sorted(values) for step, values in self.latencies.items()}


def relay_main() -> None:
    """Answer start-next and update like the bridge would, without a database."""
    from fleetportal.bridge.transport import Connection

    relay = Connection("fleetportal.relay.jobs-bench", clean_session=True, max_inflight=0)
    relay.subscribe([topics.jobs_filter(kind) for kind in REQUEST_KINDS])
    relay.connect()
    print("relay: ready", flush=True)
    jobs: dict[str, int] = {}
    while True:
        received = relay.messages.get()
        request = orjson.loads(received.payload)
        route = topics.parse(received.topic)
        reply: dict = {"timestamp": int(time.time()), "clientToken": request.get("clientToken")}
        if route.kind == topics.JOBS_START_NEXT:
            n = jobs[route.device_id] = jobs.get(route.device_id, 0) + 1
            reply["execution"] = {"jobId": f"bench-{n:04d}", "status": "IN_PROGRESS"}
        relay.publish(f"{received.topic}/accepted", orjson.dumps(reply))
        relay.ack(received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=100, help="jobs queued for every device")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        relay_main()
        return

    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    empty_tables()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # One request in flight per device stays far under the per-device limit; measure the
        # bridge, not the limit.
        mosquitto, env = start_broker(directory, device_rate_limit=0)
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        load = Load()
        try:
            device_ids = [f"bench-{n:04d}" for n in range(args.devices)]
            for device_id in device_ids:
                services.register_device(
                    {"device_id": device_id, "device_type": "bench"}, actor="bench"
                )
            Device.objects.update(status=DeviceStatus.ACTIVE)
            queue_work(list(Device.objects.all()), args.jobs)
            (directory / "clients").mkdir()
            load.devices = [JobsDevice(d, directory / "clients", load) for d in device_ids]

            relay = shadows.start_process(
                ["bench/jobs_protocol.py", "--relay"], env, ready="relay: ready"
            )
            try:
                time.sleep(0.5)
                rows.append(("raw relay, no database (ceiling)", *load.run(args.seconds)))
            finally:
                shadows.stop_process(relay)
            bridges = shadows.start_bridges(env, 1, split=False)
            try:
                time.sleep(2.0)
                rows.append(("1 bridge", *load.run(args.seconds)))
            finally:
                for process in bridges:
                    shadows.stop_process(process)
                shadows.forget_sessions(1)
        finally:
            for device in load.devices:
                device.close()
            shadows.stop_process(mosquitto)

    finished = JobExecution.objects.filter(status="SUCCEEDED").count()
    print(
        f"\n{os.cpu_count()} CPUs; {args.devices} devices, one request in flight each; "
        f"{args.seconds:.0f} s per run; executions SUCCEEDED through the bridge: {finished:,}; "
        f"devices that ran out of jobs: {load.exhausted}\n"
    )
    print("| run | requests/s | updates/s | p50 ms | p99 ms | update p99 ms | of raw relay |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ceiling = None
    for name, elapsed, latencies in rows:
        every = sorted(v for values in latencies.values() for v in values)
        updates = sorted(latencies.get("in-progress", []) + latencies.get("succeeded", []))
        rate = len(every) / elapsed
        ceiling = ceiling or rate
        p = shadows.percentile
        print(
            f"| {name} | {rate:,.0f} | {len(updates) / elapsed:,.0f} | {p(every, 0.5):.1f} | "
            f"{p(every, 0.99):.1f} | {p(updates, 0.99):.1f} | {100 * rate / ceiling:.0f} % |"
        )


if __name__ == "__main__":
    main()
