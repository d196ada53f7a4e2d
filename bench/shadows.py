#!/usr/bin/env python
"""Shadow updates end to end: devices → Mosquitto → bridge → PostgreSQL → replies → devices.

    .venv/bin/python bench/shadows.py [--devices 20] [--window 40] [--seconds 10] [--rates 250,1000]

N simulated devices (paho, mTLS, certificates from a throwaway CA) publish reported updates
through the portal's own Mosquitto (generated config, free ports). Every update is answered by
the bridge — `manage.py runbridge` as a separate process — with update/accepted and
update/documents (all replies go through the outbox and are published).

1. full speed: each device keeps --window updates in flight (closed loop, per-device order);
   accepted updates/s and p50/p99 latency publish → update/accepted;
2. the raw ceiling: the same messages relayed Mosquitto → paho → Mosquitto (a relay process on
   the bridge's own transport answering with accepted + documents, no database), and the ratio;
3. steady --rates updates/s (open loop) through the bridge: p50/p99.

With --partitions 1,2,4 steps 1 and 3 run once per partition count N, in the same run: N runner
processes (`runbridge --no-publisher --partition K --partitions N`) and N outbox publishers
(`--publisher-only`), the split layout bin/run uses for one bridge, so N = 1 is today's bridge.

Uses a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_shadows; its device,
shadow and outbox tables are emptied first). Prints a markdown table.
"""

import argparse
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.django_setup import empty_device_tables, setup  # noqa: E402

setup("fleetportal_bench_shadows")

import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Sum  # noqa: E402

from bench import report  # noqa: E402
from bench.broker_support import start_broker  # noqa: E402
from devices import pki, services  # noqa: E402
from devices.choices import DeviceStatus  # noqa: E402
from devices.models import Device  # noqa: E402
from fleetportal import broker, topics  # noqa: E402
from fleetportal.bridge.partitions import Partition, partition_of  # noqa: E402
from fleetportal.bridge.transport import Connection  # noqa: E402
from fleetportal.models import BridgePartition  # noqa: E402
from shadows.models import Shadow  # noqa: E402

# --- the devices --------------------------------------------------------------------------------


def device_client(device_id: str, directory: Path, on_message) -> mqtt.Client:
    """A connected device: paho over mutual TLS with a fresh certificate from the bench's CA."""
    key_pem, issued = pki.generate_key_and_certificate(
        pki.load_ca(settings.FLEETPORTAL_CA_DIR), device_id, days=2
    )
    cert_file, key_file = directory / f"{device_id}.pem", directory / f"{device_id}.key"
    cert_file.write_text(issued.pem)
    key_file.write_text(key_pem)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=device_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    context = ssl.create_default_context(cafile=str(Path(settings.BROKER_DIR) / broker.CA_FILE))
    context.load_cert_chain(cert_file, key_file)
    context.check_hostname = False
    client.tls_set_context(context)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_message = on_message
    client.on_socket_open = lambda c, u, sock: sock.setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect("127.0.0.1", settings.BROKER_DEVICE_PORT, keepalive=60)
    client.loop_start()
    assert connected.wait(10), f"{device_id} did not connect"
    return client


class SimDevice:
    """One device connection: publishes updates with a clientToken, times update/accepted."""

    def __init__(self, device_id: str, directory: Path, bench: "Load"):
        self.device_id = device_id
        self.topic = topics.shadow_topic(device_id, "", "update")
        self.bench = bench
        self.seq = 0
        self.sent: dict[str, float] = {}
        self.lock = threading.Lock()
        client = device_client(device_id, directory, self.on_message)
        done = threading.Event()
        client.on_subscribe = lambda *args: done.set()
        client.subscribe([(topics.accepted(self.topic), 1), (topics.rejected(self.topic), 1)])
        assert done.wait(10)
        self.client = client

    def publish(self) -> None:
        with self.lock:
            self.seq += 1
            token = f"{self.device_id}-{self.seq}"
            self.sent[token] = time.perf_counter()
            reported = {"counter": self.seq, "temp": 21.5}
            body = {"state": {"reported": reported}, "clientToken": token}
        self.client.publish(self.topic, orjson.dumps(body), qos=1)

    def on_message(self, client, userdata, message) -> None:
        now = time.perf_counter()
        token = orjson.loads(message.payload).get("clientToken")
        with self.lock:
            started = self.sent.pop(token, None)
        if started is None:
            return
        if message.topic.endswith("/rejected"):
            self.bench.rejected += 1
        self.bench.done(self, now - started)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Load:
    """Closed loop (each device keeps `window` in flight) or open loop (a total rate)."""

    def __init__(self):
        self.devices: list[SimDevice] = []
        self.latencies: list[float] = []
        self.rejected = 0
        self.closed_loop = True
        self.counting = False
        self.stopping = False
        self.lock = threading.Lock()

    def done(self, device: SimDevice, latency: float) -> None:
        if self.counting:
            with self.lock:
                self.latencies.append(latency)
        if self.closed_loop and not self.stopping:
            device.publish()

    def full_speed(self, window: int, seconds: float, warmup: float = 2.0) -> tuple[float, list]:
        self.closed_loop, self.stopping = True, False
        for device in self.devices:
            for _ in range(window):
                device.publish()
        time.sleep(warmup)
        self.latencies, self.counting = [], True
        start = time.perf_counter()
        time.sleep(seconds)
        self.counting = False
        elapsed = time.perf_counter() - start
        self.stopping = True
        count = len(self.latencies)
        self.drain()
        return count / elapsed, sorted(self.latencies[:count])

    def steady(self, rate: float, seconds: float) -> tuple[float, list]:
        self.closed_loop, self.stopping = False, False
        self.latencies, self.counting = [], True
        interval = 1.0 / rate
        start = time.perf_counter()
        n = 0
        while (now := time.perf_counter()) - start < seconds:
            target = start + n * interval
            if now < target:
                time.sleep(target - now)
            self.devices[n % len(self.devices)].publish()
            n += 1
        self.drain()
        self.counting = False
        return n / (time.perf_counter() - start), sorted(self.latencies)

    def drain(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while any(d.sent for d in self.devices) and time.monotonic() < deadline:
            time.sleep(0.05)
        for device in self.devices:
            device.sent.clear()


def register_active_devices(count: int) -> list[str]:
    """`count` active bench devices registered through the service, as the benches' devices."""
    device_ids = [f"bench-{n:04d}" for n in range(count)]
    for device_id in device_ids:
        services.register_device({"device_id": device_id, "device_type": "bench"}, actor="bench")
    Device.objects.update(status=DeviceStatus.ACTIVE)
    return device_ids


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


# --- the relay (the ceiling) --------------------------------------------------------------------


def relay_main() -> None:
    """Subscribe like the bridge, answer each update with accepted + documents, no database."""
    from fleetportal.bridge.transport import Connection

    # No in-flight cap, like the outbox publisher (paho scans the unacknowledged on each PUBACK).
    connection = Connection("fleetportal.relay.bench", clean_session=True, max_inflight=0)
    connection.subscribe([topics.shadow_topic("+", "", "update")])
    connection.connect()
    print("relay: ready", flush=True)
    version = 0
    while True:
        received = connection.messages.get()
        request = orjson.loads(received.payload)
        version += 1
        accepted = {
            "state": request["state"],
            "metadata": {},
            "version": version,
            "timestamp": int(time.time()),
            "clientToken": request.get("clientToken"),
        }
        connection.publish(topics.accepted(received.topic), orjson.dumps(accepted))
        documents = {"previous": None, "current": accepted, "timestamp": accepted["timestamp"]}
        route = topics.parse(received.topic)
        documents_topic = topics.shadow_topic(route.device_id, route.name, "update", "documents")
        connection.publish(documents_topic, orjson.dumps(documents))
        connection.ack(received)


def start_process(args: list[str], env: dict[str, str], ready: str | None = None):
    process = spawn(args, env, piped=bool(ready))
    if ready:
        wait_ready(process, ready)
    return process


def spawn(args: list[str], env: dict[str, str], *, piped: bool) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if piped else subprocess.DEVNULL,
        stderr=None,
        text=True,
    )


def wait_ready(process: subprocess.Popen, ready: str) -> None:
    for line in process.stdout:
        if ready in line:
            return


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_bridges(env: dict[str, str], partitions: int, *, split: bool) -> list:
    """The bridge processes for `partitions` partitions, subscribed and ready for load."""
    since = time.time()
    processes = [
        start_process(c, env, ready="runbridge: started")
        for c in bridge_commands(partitions, split=split)
    ]
    if partitions > 1:
        wait_covered(partitions, since)
    return processes


def launch_bridges(env: dict[str, str], partitions: int, *, split: bool) -> list:
    """The bridge processes, started side by side; returns once each has loaded Django (they
    connect right after)."""
    processes = [
        spawn(command, env, piped=True) for command in bridge_commands(partitions, split=split)
    ]
    for process in processes:
        wait_ready(process, "runbridge: started")
    return processes


def bridge_commands(partitions: int, *, split: bool) -> list[list[str]]:
    commands = []
    for k in range(partitions):
        layout = ["--partition", str(k), "--partitions", str(partitions)]
        commands.append(["manage.py", "runbridge", *layout] + (["--no-publisher"] if split else []))
        if split:
            commands.append(["manage.py", "runbridge", "--publisher-only", *layout])
    return commands


def wait_covered(partitions: int, since: float) -> None:
    """Until every partition has recorded its subscriptions (made after `since`)."""
    covered = BridgePartition.objects.filter(partitions=partitions)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = list(covered)
        if len(rows) == partitions and all(r.covered_at.timestamp() > since for r in rows):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the {partitions} bridges did not subscribe within 60 s")


def forget_sessions(partitions: int) -> None:
    """Drop the runners' persistent sessions: nothing may queue for them during the next run."""
    for k in range(partitions):
        session = Connection(Partition(k, partitions).runner_client_id, clean_session=True)
        session.connect(timeout=5)
        session.close()


def drain_backlog(load: Load, env: dict[str, str], partitions: int, per_device: int, split: bool):
    """The bridge's own rate, without a load generator competing for the cores: the devices
    publish `per_device` updates each while the bridge is stopped (its persistent session
    queues them at the broker), then the bridge starts and drains the backlog. Returns
    (updates/s while the middle 80 % of the backlog was written, updates written): the
    processes' start (Python, Django, connecting) and the last stragglers are not counted."""
    total = per_device * len(load.devices)
    sessions = start_bridges(env, partitions, split=split)  # makes the sessions
    time.sleep(2.0)  # connected and subscribed
    for process in sessions:
        stop_process(process)
    before = Shadow.objects.aggregate(total=Sum("version"))["total"] or 0
    for device in load.devices:
        for _ in range(per_device):
            device.publish()
    time.sleep(2.0)  # every publish PUBACKed and queued for the bridge's session
    for device in load.devices:
        device.sent.clear()
    bridges = launch_bridges(env, partitions, split=split)  # the backlog flows as they connect
    samples = []  # (time, versions written)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            written = (Shadow.objects.aggregate(total=Sum("version"))["total"] or 0) - before
            samples.append((time.perf_counter(), written))
            if written >= total:
                break
            time.sleep(0.01)
    finally:
        for process in bridges:
            stop_process(process)
        forget_sessions(partitions)
    first = next(t for t, n in samples if n >= 0.1 * total)
    last = next(t for t, n in samples if n >= 0.9 * total)
    return 0.8 * total / (last - first), written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--window", type=int, default=40, help="updates in flight per device")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rates", default="250,1000", help="steady runs, updates/s (comma-separated)"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the outbox publisher as a process of its own (runbridge --publisher-only)",
    )
    parser.add_argument(
        "--partitions",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1],
        help="bridge partition counts to run one after another, e.g. 1,2,4 (implies --split)",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        metavar="UPDATES",
        help="also: UPDATES per device queued while the bridge is stopped, then drained",
    )
    parser.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.split = args.split or args.partitions != [1]
    if args.relay:
        relay_main()
        return

    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    empty_device_tables()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # Each device sends its backlog at once: measure the bridge, not the per-device limit.
        mosquitto, env = start_broker(directory, device_rate_limit=0)
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        load = Load()
        try:
            device_ids = register_active_devices(args.devices)
            (directory / "clients").mkdir()
            load.devices = [SimDevice(d, directory / "clients", load) for d in device_ids]

            relay = start_process(["bench/shadows.py", "--relay"], env, ready="relay: ready")
            try:
                time.sleep(0.5)
                rate, lat = load.full_speed(args.window, args.seconds)
                ceiling = rate
                rows.append(("raw relay, no database (ceiling)", rate, lat, ceiling))
            finally:
                stop_process(relay)

            for partitions in args.partitions:
                bridges = start_bridges(env, partitions, split=args.split)
                label = f"{partitions} bridge{'s' if partitions > 1 else ''}"
                try:
                    time.sleep(2.0)  # connected and subscribed
                    rate, lat = load.full_speed(args.window, args.seconds)
                    rows.append((f"{label}, full speed", rate, lat, ceiling))
                    for target in (float(r) for r in args.rates.split(",") if r):
                        time.sleep(1.0)
                        rate, lat = load.steady(target, args.seconds)
                        rows.append((f"{label}, steady {target:,.0f}/s", rate, lat, None))
                finally:
                    for process in bridges:
                        stop_process(process)
                    forget_sessions(partitions)
                if args.backlog:
                    rate, _ = drain_backlog(load, env, partitions, args.backlog, args.split)
                    rows.append((f"{label}, draining a backlog", rate, [], ceiling))
        finally:
            for device in load.devices:
                device.close()
            stop_process(mosquitto)

    versions = Shadow.objects.aggregate(total=Sum("version"))["total"] or 0
    layout = "runner and publisher in separate processes" if args.split else "one bridge process"
    print(
        f"\n{os.cpu_count()} CPUs; {layout}; {args.devices} devices x {args.window} in flight; "
        f"{args.seconds:.0f} s per run; rejected replies: {load.rejected}; "
        f"shadow versions written: {versions:,}"
    )
    for partitions in args.partitions:
        if partitions > 1:
            shares = [0] * partitions
            for n in range(args.devices):
                shares[partition_of(f"bench-{n:04d}", partitions)] += 1
            print(f"devices per partition with {partitions} bridges: {shares}")
    print()
    print("| run | accepted updates/s | p50 ms | p99 ms | of raw relay |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, lat, ceiling in rows:
        ratio = f"{100 * rate / ceiling:.0f} %" if ceiling else "—"
        print(
            f"| {name} | {rate:,.0f} | {percentile(lat, 0.5):.1f} | "
            f"{percentile(lat, 0.99):.1f} | {ratio} |"
        )
    record(rows, args)


def record(rows: list[tuple], args) -> None:
    """Issue 4's targets, for one bridge (bin/run's layout): >= 4,000 accepted updates/s end to
    end and >= 60 % of the relay; p99 < 50 ms at a steady 1,000/s. Several bridges are measured
    against one (what a partition adds)."""
    report.size(devices=args.devices, in_flight_per_device=args.window, seconds=args.seconds)
    one_bridge: dict[str, float] = {}
    for name, rate, lat, ceiling in rows:
        label, _, run = name.partition(", ")
        single = label == "1 bridge"
        if name.startswith("raw relay"):
            report.record(name, rate, "/s")
        elif run.startswith("steady"):
            target = 50 if single and run == "steady 1,000/s" else None
            report.record(f"{name}: p99", percentile(lat, 0.99), "ms", target=target)
            report.record(f"{name}: p50", percentile(lat, 0.5), "ms")
        elif single:
            one_bridge[run] = rate
            end_to_end = run == "full speed"
            report.record(
                name,
                rate,
                "/s",
                target=4000 if end_to_end else None,
                ratio_target=0.6 if end_to_end else None,
                baseline="raw relay, no database (ceiling)",
                baseline_value=ceiling,
                note="" if end_to_end else f"{args.backlog:,} updates per device queued, drained",
            )
        else:
            baseline = f"1 bridge, {run}"
            report.record(name, rate, "/s", baseline=baseline, baseline_value=one_bridge.get(run))


if __name__ == "__main__":
    main()
