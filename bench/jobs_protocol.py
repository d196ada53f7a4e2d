#!/usr/bin/env python
"""The jobs device protocol end to end: devices → Mosquitto → bridge → PostgreSQL → replies.

    .venv/bin/python bench/jobs_protocol.py [--devices 400] [--jobs 60] [--seconds 10]

Each simulated device (mutual TLS, its own certificate from a throwaway CA, so the broker keeps
it to its own topics) works through its queue as firmware written against the AWS IoT Jobs
client does: `start-next`, `update` IN_PROGRESS with statusDetails, `update` SUCCEEDED, the next
`start-next` — one request in flight per device, each answered on …/accepted. Every SUCCEEDED
also queues `notify` and `notify-next`. All devices run on one thread (simulator/mqtt.py),
so the load generator stays cheap beside the portal on the same cores. Two runs in this process:

1. the raw relay (the ceiling): the same requests answered Mosquitto → paho → Mosquitto with the
   shortest accepted reply a device would take, no database;
2. the bridge in the layout bin/run starts (`manage.py runbridge --no-publisher` and
   `runbridge --publisher-only`; `--one-process` for both in one process): the real protocol
   on rows.

Prints requests/s (start-next and both updates), updates/s (the updates alone) and p50/p99 of
publish → accepted. Uses the shadow bench's scratch database (BENCH_DATABASE_URL).
"""

import argparse
import asyncio
import os
import ssl
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import shadows  # noqa: I001  (sets Django up against the bench database first)

import orjson
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bench import report
from bench.django_setup import empty_device_tables
from simulator import mqtt as mqtt_client
from bench.broker_support import start_broker
from bench.cpu_usage import Usage
from devices import pki
from devices.models import Device
from firmware.models import Job, JobExecution
from fleetportal import broker, topics

REQUEST_KINDS = (topics.JOBS_START_NEXT, topics.JOBS_UPDATE)
PING_SECONDS = 30


def empty_tables() -> None:
    empty_device_tables()
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


def tls_context(device_id: str, directory: Path) -> ssl.SSLContext:
    """A device's TLS: the broker's CA, and a fresh certificate (CN = device_id) of its own."""
    key_pem, issued = pki.generate_key_and_certificate(
        pki.load_ca(settings.FLEETPORTAL_CA_DIR), device_id, days=2
    )
    cert_file, key_file = directory / f"{device_id}.pem", directory / f"{device_id}.key"
    cert_file.write_text(issued.pem)
    key_file.write_text(key_pem)
    context = ssl.create_default_context(cafile=str(Path(settings.BROKER_DIR) / broker.CA_FILE))
    context.load_cert_chain(cert_file, key_file)
    context.check_hostname = False
    return context


class JobsDevice:
    """A device running its jobs one after another; times each request to its reply. Runs on
    the load generator's event loop."""

    def __init__(self, device_id: str, load: "Load"):
        self.device_id = device_id
        self.load = load
        self.seq = 0
        self.pending: tuple[str, float, str] | None = None  # (token, sent at, step)
        self.job_topic = ""
        self.client: mqtt_client.Client | None = None

    async def connect(self, context: ssl.SSLContext) -> None:
        self.client = await mqtt_client.connect(
            "127.0.0.1", settings.BROKER_DEVICE_PORT, context, self.device_id, self.on_message
        )
        start_next = topics.jobs_topic(self.device_id, topics.JOBS_START_NEXT)
        # The SDK's jobs client subscribes to {jobId}/update/+ per job; one wildcard here.
        update = topics.jobs_filter(topics.JOBS_UPDATE).replace("/+/", f"/{self.device_id}/", 1)
        await self.client.subscribe(
            [f"{start_next}/accepted", f"{start_next}/rejected", f"{update}/+"]
        )

    def send(self, topic: str, body: dict, step: str) -> None:
        self.seq += 1
        token = f"{self.device_id}-{self.seq}"
        self.pending = (token, time.perf_counter(), step)
        self.client.publish(topic, orjson.dumps({**body, "clientToken": token}))

    def start_next(self) -> None:
        self.send(topics.jobs_topic(self.device_id, topics.JOBS_START_NEXT), {}, "start-next")

    def on_message(self, topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        reply = orjson.loads(payload)
        if self.pending is None or reply.get("clientToken") != self.pending[0]:
            return
        _, sent, step = self.pending
        self.pending = None
        if topic.endswith("/rejected"):
            self.load.rejected.append(reply)
            return  # a device would stop here too; the run reports it
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


class Load(mqtt_client.LoopThread):
    """Every device on one event loop, in a thread of its own; the main thread runs the bench."""

    def __init__(self):
        super().__init__()
        self.devices: list[JobsDevice] = []
        self.latencies: dict[str, list[float]] = {}
        self.counting = False
        self.stopping = False
        self.exhausted = 0
        self.rejected: list[dict] = []

    def connect(self, device_ids: list[str], directory: Path) -> None:
        contexts = {d: tls_context(d, directory) for d in device_ids}
        self.devices = [JobsDevice(d, self) for d in device_ids]

        async def connect_all():
            # A few at a time: the broker's TLS handshakes share the cores with everything else.
            for start in range(0, len(self.devices), 50):
                chunk = self.devices[start : start + 50]
                await asyncio.gather(*(d.connect(contexts[d.device_id]) for d in chunk))
            self.loop.create_task(self._keep_alive())

        self.call(connect_all())

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(PING_SECONDS)
            for device in self.devices:
                device.client.ping()

    def done(self, step: str, latency: float) -> None:
        if self.counting:
            self.latencies.setdefault(step, []).append(latency)

    def run(self, seconds: float, usage: Usage, warmup: float = 2.0) -> tuple:
        """(seconds measured, latencies by step, cores used by each process group)."""
        self.stopping, self.exhausted = False, 0
        for device in self.devices:
            self.loop.call_soon_threadsafe(device.start_next)
        time.sleep(warmup)
        self.latencies, self.counting = {}, True
        usage.start()
        start = time.perf_counter()
        time.sleep(seconds)
        self.counting = False
        elapsed = time.perf_counter() - start
        cores = usage.stop(elapsed)
        self.stopping = True
        time.sleep(1.0)  # the last replies
        latencies = {step: sorted(values) for step, values in self.latencies.items()}
        return elapsed, latencies, cores

    def close(self) -> None:
        for device in self.devices:
            if device.client is not None:
                self.loop.call_soon_threadsafe(device.client.disconnect)
        time.sleep(0.5)


def relay_main() -> None:
    """Answer start-next and update like the bridge would, without a database."""
    from fleetportal.bridge.runner import SWITCH_INTERVAL_SECONDS
    from fleetportal.bridge.transport import Connection

    # As the bridge's runner: paho's network thread and this loop hand the GIL to each other
    # for every message (runner.SWITCH_INTERVAL_SECONDS).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
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


def database_backends() -> list[int]:
    """The PostgreSQL processes serving this database's other connections (the bridge's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def print_table(rows: list, args, finished: int, load: Load) -> None:
    layout = "runner and publisher in one process" if args.one_process else "bin/run's layout"
    print(
        f"\n{os.cpu_count()} CPUs; {args.devices} devices, one request in flight each, on one "
        f"thread; bridge: {layout}; {args.seconds:.0f} s per run; executions SUCCEEDED through "
        f"the bridge: {finished:,}; devices that ran out of jobs: {load.exhausted}; rejected "
        f"replies: {len(load.rejected)}\n"
    )
    print("| run | requests/s | updates/s | p50 ms | p99 ms | update p99 ms | of raw relay |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ceiling = None
    for name, elapsed, latencies, _ in rows:
        every = sorted(v for values in latencies.values() for v in values)
        updates = sorted(latencies.get("in-progress", []) + latencies.get("succeeded", []))
        rate = len(every) / elapsed
        ceiling = ceiling or rate
        p = shadows.percentile
        print(
            f"| {name} | {rate:,.0f} | {len(updates) / elapsed:,.0f} | {p(every, 0.5):.1f} | "
            f"{p(every, 0.99):.1f} | {p(updates, 0.99):.1f} | {100 * rate / ceiling:.0f} % |"
        )
    print("\nCPU used while measured, in cores (of", os.cpu_count(), "):\n")
    for name, _, _, cores in rows:
        print(f"- {name}: " + ", ".join(f"{group} {used:.2f}" for group, used in cores.items()))
    for reply in load.rejected[:5]:
        print("rejected:", reply)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=400)
    parser.add_argument("--jobs", type=int, default=60, help="jobs queued for every device")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--one-process", action="store_true", help="runner and publisher in one bridge process"
    )
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
            device_ids = shadows.register_active_devices(args.devices)
            queue_work(list(Device.objects.all()), args.jobs)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # the planner's statistics, as a live database has
            (directory / "clients").mkdir()
            load.connect(device_ids, directory / "clients")

            relay = shadows.start_process(
                ["bench/jobs_protocol.py", "--relay"], env, ready="relay: ready"
            )
            common = {"Mosquitto": [mosquitto.pid], "load generator": [os.getpid()]}
            try:
                time.sleep(0.5)
                usage = Usage({"relay": [relay.pid], **common})
                rows.append(("raw relay, no database (ceiling)", *load.run(args.seconds, usage)))
            finally:
                shadows.stop_process(relay)
            bridges = shadows.start_bridges(env, 1, split=not args.one_process)
            try:
                time.sleep(2.0)
                names = ["bridge"] if args.one_process else ["runner", "outbox publisher"]
                groups: dict = {name: [p.pid] for name, p in zip(names, bridges, strict=True)}
                groups["PostgreSQL"] = database_backends  # once the bridge is connected
                usage = Usage({**groups, **common})
                rows.append(("1 bridge", *load.run(args.seconds, usage)))
            finally:
                for process in bridges:
                    shadows.stop_process(process)
                shadows.forget_sessions(1)
        finally:
            load.close()
            shadows.stop_process(mosquitto)

    finished = JobExecution.objects.filter(status="SUCCEEDED").count()
    print_table(rows, args, finished, load)
    record(rows, args)


def record(rows: list, args) -> None:
    """Issue 12: >= 2,000 updates/s through the bridge, against the relay (the ceiling, run
    first)."""
    report.size(devices=args.devices, seconds=args.seconds, one_process=args.one_process)
    measured = []
    for name, elapsed, latencies, _ in rows:
        every = sorted(v for values in latencies.values() for v in values)
        updates = len(latencies.get("in-progress", [])) + len(latencies.get("succeeded", []))
        p99 = shadows.percentile(every, 0.99)
        measured.append((name, updates / elapsed, len(every) / elapsed, p99))
    (relay, relay_updates, relay_requests, relay_p99), *bridges = measured
    report.record(f"{relay}: updates/s", relay_updates, "/s")
    report.record(f"{relay}: requests/s", relay_requests, "/s")
    for name, updates, requests, p99 in bridges:
        for figure, value, of_relay, target in (
            ("updates/s", updates, relay_updates, 2000),
            ("requests/s", requests, relay_requests, None),
            ("p99", p99, relay_p99, None),
        ):
            report.record(
                f"{name}: {figure}",
                value,
                "ms" if figure == "p99" else "/s",
                target=target,
                baseline=f"{relay}: {figure}",
                baseline_value=of_relay,
            )


if __name__ == "__main__":
    main()
