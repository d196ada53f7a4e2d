#!/usr/bin/env python
"""Concurrent mutual-TLS device connections: how many this machine holds, and what they cost.

    .venv/bin/python bench/connections.py [--devices 5000] [--minutes M] [--full]

--full is --devices 50000 --minutes 5 (each device sends one update in the steady state).
The portal's own Mosquitto (generated config, free ports, bench/broker_support.py) with the
bridge in bin/run's layout (`runbridge --no-publisher` and `runbridge --publisher-only`) and
a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_connections; its device and
shadow tables are emptied first). Each device has its own certificate from the bench's CA;
the CA and the certificates are cached in var/bench/connections/ (--cache), so a rerun issues
only the devices it has not issued before.

1. baseline: broker and bridge memory and CPU with no device connected (10 s);
2. ramp: the load generator (bench/connection_load.py, one process per ~open-files limit, at
   least two) connects every device — its own source address per ~22k sockets, keep-alive 60 s,
   subscribed to its shadow's update/accepted and /rejected — recording the connect rate and the
   broker's and bridge's resident memory at every 10,000 connections; it stops at --max-failures
   failed connections and says what failed (the peak, if below --devices);
3. steady state (--minutes): every device pings each minute and sends a shadow update every
   5 minutes (QoS 1, spread evenly); the accepted replies are counted against the updates sent.

Prints markdown tables; docs/connections.md holds a full run and what an operator sizes by.
"""

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.django_setup import empty_device_tables, setup  # noqa: E402

setup("fleetportal_bench_connections")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count, Min, Sum  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import connection_load, report  # noqa: E402
from bench.broker_support import start_broker  # noqa: E402
from bench.cpu_usage import Usage  # noqa: E402
from devices import credentials, pki, services  # noqa: E402
from devices.choices import DeviceStatus  # noqa: E402
from devices.models import Device, DeviceCredential  # noqa: E402
from fleetportal import broker, limits, topics  # noqa: E402
from fleetportal.models import OutboxMessage  # noqa: E402
from monitoring.models import Presence  # noqa: E402
from shadows.models import Shadow  # noqa: E402

CACHE = ROOT / "var" / "bench" / "connections"
UPDATE_SECONDS = 300  # a shadow update every 5 minutes per device
MEMORY_STEP = 10_000  # resident memory sampled at every 10,000 connections
CERT_DAYS = 365
REGISTER_BATCH = 5_000


def device_id(index: int) -> str:
    return f"conn-{index:06d}"


# --- certificates, cached ------------------------------------------------------------------------


def _issue_chunk(job: tuple[str, str, list[str]]) -> int:
    """In a pool process: a key and certificate per device, written as one PEM file (0600)."""
    ca_directory, cert_directory, device_ids = job
    ca = pki.load_ca(ca_directory)
    for name in device_ids:
        key_pem, issued = pki.generate_key_and_certificate(ca, name, CERT_DAYS)
        file = Path(cert_directory) / f"{name}.pem"
        descriptor = os.open(file.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(issued.pem + key_pem)
        file.with_suffix(".tmp").rename(file)
    return len(device_ids)


def ensure_certificates(cache: Path, device_ids: list[str]) -> None:
    """Every device's certificate and key in cache/devices/, issued by the CA in cache/ca/
    (created the first time); only the missing ones are issued, on every core."""
    ca_directory, cert_directory = cache / "ca", cache / "devices"
    if not pki.ca_exists(ca_directory):
        pki.create_ca(ca_directory)
    cert_directory.mkdir(parents=True, exist_ok=True)
    cert_directory.chmod(0o700)
    missing = [d for d in device_ids if not (cert_directory / f"{d}.pem").exists()]
    if not missing:
        return
    print(f"Issuing {len(missing):,} device certificates into {cert_directory} (cached) …")
    started = time.monotonic()
    chunks = [missing[n : n + 1000] for n in range(0, len(missing), 1000)]
    jobs = [(str(ca_directory), str(cert_directory), chunk) for chunk in chunks]
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        issued = sum(pool.imap_unordered(_issue_chunk, jobs))
    seconds = time.monotonic() - started
    print(f"  {issued:,} in {seconds:.0f} s ({issued / seconds:,.0f}/s)")


# --- the registry --------------------------------------------------------------------------------


def register(cert_directory: Path, device_ids: list[str]) -> None:
    """The devices, registered through the service, each with its cached certificate recorded
    as its active credential, and active (as after their first connection)."""
    print(f"Registering {len(device_ids):,} devices with their certificates …")
    for start in range(0, len(device_ids), REGISTER_BATCH):
        batch = device_ids[start : start + REGISTER_BATCH]
        rows = [{"device_id": d, "device_type": "bench-connections"} for d in batch]
        devices = services.register_devices(rows, actor="bench")
        DeviceCredential.objects.bulk_create(
            (
                credentials.new_credential(
                    _issued(cert_directory, d.device_id), d.device_id, device=d
                )
                for d in devices
            ),
            batch_size=1000,
        )
    Device.objects.update(status=DeviceStatus.ACTIVE)


def _issued(cert_directory: Path, name: str) -> pki.IssuedCertificate:
    certificate = x509.load_pem_x509_certificate((cert_directory / f"{name}.pem").read_bytes())
    return pki.IssuedCertificate(
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        serial_number=certificate.serial_number,
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


# --- processes -----------------------------------------------------------------------------------


def resident_mb(pids: list[int]) -> float:
    """Resident memory (VmRSS) of the processes, MB; 0 for those gone."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), "")
        total += int(line.split()[1]) if line else 0
    return total / 1024


def open_files_limit(pid: int) -> str:
    """The soft open-files limit a running process has (/proc/<pid>/limits)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    return "?"


def start_bridge(env: dict[str, str]) -> list[subprocess.Popen]:
    """The runner and the outbox publisher, as bin/run starts them; returns once both run."""
    processes = []
    for role in ("--no-publisher", "--publisher-only"):
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runbridge", role],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in process.stdout:
            if "runbridge: started" in line:
                break
        processes.append(process)
    return processes


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LoadGenerator:
    """The load-generator processes (bench/connection_load.py) and what they report."""

    def __init__(self, spec: dict, devices: list[list], processes: int):
        self.processes = []
        self.reports: dict[int, dict] = {}  # each process's latest phase report (ramped, steady)
        self.progress: dict[int, dict] = {}  # … and its latest progress report
        self.lock = threading.Lock()
        share = math.ceil(len(devices) / processes)
        for number in range(processes):
            own = devices[number * share : (number + 1) * share]
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, str(ROOT / "bench" / "connection_load.py")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            process.stdin.write(json.dumps({**spec, "devices": own}) + "\n")
            process.stdin.flush()
            self.processes.append(process)
            threading.Thread(target=self._read, args=(number, process), daemon=True).start()

    def _read(self, number: int, process: subprocess.Popen) -> None:
        for line in process.stdout:
            report = json.loads(line)
            with self.lock:
                if report["event"] == "progress":
                    self.progress[number] = report
                else:
                    self.reports[number] = report

    def live(self, field: str) -> int:
        """The sum of the processes' latest progress reports' `field`."""
        with self.lock:
            return sum(r[field] for r in self.progress.values())

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def all_at(self, event: str) -> bool:
        with self.lock:
            reports = list(self.reports.values())
        return len(reports) == len(self.processes) and all(r["event"] == event for r in reports)

    def total(self, field: str) -> int:
        with self.lock:
            return sum(r.get(field, 0) for r in self.reports.values())

    def merged(self, field: str) -> Counter:
        merged: Counter = Counter()
        with self.lock:
            for report in self.reports.values():
                merged.update(dict(report.get(field, [])))
        return merged

    def worst(self, field: str) -> float | None:
        with self.lock:
            values = [r[field] for r in self.reports.values() if r.get(field) is not None]
        return max(values) if values else None

    def first_numbers(self) -> list[int]:
        """Each process's first device number among all connected devices (in process order)."""
        with self.lock:
            connected = [self.reports[n]["connected"] for n in range(len(self.processes))]
        return [sum(connected[:n]) for n in range(len(connected))]

    def order(self, order: dict, processes: list[subprocess.Popen] | None = None) -> None:
        for process in processes or self.processes:
            process.stdin.write(json.dumps(order) + "\n")
            process.stdin.flush()

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(OSError):  # a process that ended has closed its pipe
                process.stdin.write(json.dumps({"stop": True}) + "\n")
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


# --- the run -------------------------------------------------------------------------------------


def open_files(pid: int) -> int:
    """How many descriptors the process has open now."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return 0


class Samples:
    """Resident memory of the broker, the bridge and the load generator at connection counts,
    and the broker's open files (one per connection)."""

    def __init__(self, pids: dict[str, list[int]]):
        self.pids = pids
        self.rows: list[tuple[str, int, dict[str, float]]] = []
        self.broker_files: list[int] = []

    def take(self, label: str, connections: int) -> None:
        self.rows.append(
            (label, connections, {name: resident_mb(p) for name, p in self.pids.items()})
        )
        self.broker_files.append(open_files(self.pids["broker"][0]))


def ramp(
    load: LoadGenerator, samples: Samples, timeline: "Timeline"
) -> tuple[float, list[tuple[float, int]]]:
    """Wait while the devices connect, sampling memory at each 10,000; returns the ramp's
    seconds and (time, connections) points."""
    started = time.monotonic()
    points, next_sample = [(0.0, 0)], MEMORY_STEP
    while not load.all_at("ramped"):
        time.sleep(0.2)
        connected = load.live("connected")
        points.append((time.monotonic() - started, connected))
        if connected >= next_sample:
            samples.take(f"{next_sample // 1000}k connected", connected)
            next_sample += MEMORY_STEP
        if len(points) % 25 == 0:  # every 5 s
            timeline.sample("ramp")
        if any(p.poll() is not None for p in load.processes):
            raise RuntimeError("a load-generator process ended during the ramp")
    seconds = max(r["seconds"] for r in load.reports.values())
    return seconds, points


class Timeline:
    """What the portal made of what the devices did, sampled every few seconds: devices online
    in the portal (presence, from the broker's log), updates sent and written, replies
    received, and the outbox's backlog (replies and lifecycle events not yet published)."""

    def __init__(self, load: LoadGenerator):
        self.load = load
        self.started = time.monotonic()
        self.rows: list[tuple] = []

    def sample(self, phase: str) -> dict:
        outbox = OutboxMessage.objects.aggregate(rows=Count("id"), oldest=Min("created_at"))
        state = {
            "presence": Presence.objects.filter(online=True).count(),
            "written": Shadow.objects.aggregate(total=Sum("version"))["total"] or 0,
            "outbox": outbox["rows"],
            "oldest": (timezone.now() - outbox["oldest"]).total_seconds() if outbox["rows"] else 0,
        }
        self.rows.append(
            (
                time.monotonic() - self.started,
                phase,
                self.load.live("online"),
                state["presence"],
                self.load.live("updates"),
                state["written"],
                self.load.live("accepted"),
                state["outbox"],
                state["oldest"],
            )
        )
        return state

    def print(self, most: int = 24) -> None:
        step = max(1, math.ceil(len(self.rows) / most))
        shown = self.rows[::step] + ([self.rows[-1]] if (len(self.rows) - 1) % step else [])
        print(
            "| s | phase | connected | online in the portal | updates sent | written | "
            "accepted | outbox rows | oldest outbox row, s |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for t, phase, *counts, oldest in shown:
            print(
                f"| {t:.0f} | {phase} | "
                + " | ".join(f"{c:,}" for c in counts)
                + f" | {oldest:.0f} |"
            )


def catch_up(timeline: Timeline, connected: int, limit: float = 600.0) -> float:
    """Seconds after the ramp until the portal has caught up: every device online in the
    portal (or that count steady for 10 s) and the outbox empty."""
    started, last_change, last_presence = time.monotonic(), time.monotonic(), -1
    while time.monotonic() - started < limit:
        state = timeline.sample("catching up")
        if state["presence"] != last_presence:
            last_presence, last_change = state["presence"], time.monotonic()
        settled = state["presence"] >= connected or time.monotonic() - last_change > 10
        if state["outbox"] == 0 and settled:
            break
        time.sleep(2.0)
    return time.monotonic() - started


def middle_rate(points: list[tuple[float, int]], total: int) -> float:
    """Connections per second between 10 % and 90 % of those made (start and tail excluded)."""
    if total < 10:
        return float("nan")
    first = next(t for t, n in points if n >= 0.1 * total)
    last = next((t for t, n in points if n >= 0.9 * total), points[-1][0])
    return 0.8 * total / (last - first) if last > first else float("nan")


def print_cpu(rows: list[tuple[str, float, dict[str, float]]]) -> None:
    names = list(rows[0][2])
    print("| phase | seconds | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for phase, seconds, cores in rows:
        print(f"| {phase} | {seconds:.0f} | " + " | ".join(f"{cores[n]:.2f}" for n in names) + " |")


def print_memory(samples: Samples) -> None:
    names = list(samples.pids)
    heading = " | ".join(f"{n} MB" for n in names)
    print(f"| when | connections | broker open files | {heading} |")
    print("|---|---:|---:|" + "---:|" * len(names))
    for (label, connections, mb), files in zip(samples.rows, samples.broker_files, strict=True):
        memory = " | ".join(f"{mb[n]:.0f}" for n in names)
        print(f"| {label} | {connections:,} | {files:,} | {memory} |")
    # The slope from the first 10,000 (or no device) to the peak: the load generator's own
    # processes start with the first devices, so their start-up memory is not a device's.
    rows = [row for row in samples.rows if row[0] != "after the steady state"]
    _, low, at_low = rows[1] if len(rows) > 2 else rows[0]
    _, peak, at_peak = max(rows, key=lambda row: row[1])
    if peak > low:
        per = {n: (at_peak[n] - at_low[n]) * MEMORY_STEP / (peak - low) for n in names}
        print(
            f"| per 10,000 connections (from {low:,} to {peak:,}) | | | "
            + " | ".join(f"{per[n]:.0f}" for n in names)
            + " |"
        )


def broker_log_size(broker_dir: Path) -> int:
    log = broker_dir / broker.LOG_FILE
    return log.stat().st_size if log.exists() else 0


def broker_errors(broker_dir: Path, offset: int) -> list[str]:
    """The broker log's error and warning lines after `offset` (the last five)."""
    with (broker_dir / broker.LOG_FILE).open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    return [line for line in lines if any(w in line for w in ("rror", "Unable", "arning"))][-5:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5_000)
    parser.add_argument(
        "--minutes", type=float, help="steady state (default 5 with --full, else 1)"
    )
    parser.add_argument("--full", action="store_true", help="50,000 devices, 5 minutes")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="handshakes in flight per process"
    )
    parser.add_argument(
        "--max-failures", type=int, default=200, help="per process; then it stops connecting"
    )
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    if args.full:
        args.devices = 50_000
    minutes = args.minutes if args.minutes is not None else (5.0 if args.full else 1.0)

    # The broker and the load generator inherit this: one descriptor per connection.
    open_files, open_files_hard = limits.raise_open_files_limit()
    ports = connection_load.ephemeral_ports(
        Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
    )
    addresses = connection_load.source_addresses(args.devices, ports)
    process_count = connection_load.processes_needed(args.devices, open_files_hard)
    load_before = Path("/proc/loadavg").read_text().split()[:3]

    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    empty_device_tables()
    names = [device_id(n) for n in range(args.devices)]
    ensure_certificates(args.cache, names)
    register(args.cache / "devices", names)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        mosquitto, env = start_broker(directory, ca_directory=args.cache / "ca")
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        bridge = start_bridge(env)
        load = None
        try:
            pids = {
                "broker": [mosquitto.pid],
                "bridge": [p.pid for p in bridge],
                "load generator": [],  # its processes start after the baseline
            }
            samples = Samples(pids)
            time.sleep(2.0)  # the bridge connected and subscribed
            cpu_rows = []
            idle = Usage(dict(pids))
            idle.start()
            time.sleep(10.0)
            cpu_rows.append(("baseline: no device connected", 10.0, idle.stop(10.0)))
            samples.take("baseline", 0)

            spec = {
                "host": "127.0.0.1",
                "port": settings.BROKER_DEVICE_PORT,
                "server_hostname": "localhost",
                "ca_file": str(Path(settings.BROKER_DIR) / broker.CA_FILE),
                "cert_dir": str(args.cache / "devices"),
                "source_addresses": addresses,
                "concurrency": args.concurrency,
                "connect_timeout": 30,
                "max_failures": args.max_failures,
                "update_seconds": UPDATE_SECONDS,
                "drain_seconds": 30,
            }
            devices = [
                [n, name, update, topics.accepted(update), topics.rejected(update)]
                for n, name in enumerate(names)
                for update in [topics.shadow_topic(name, "", "update")]
            ]
            print(
                f"Connecting {args.devices:,} devices from {process_count} processes over "
                f"{len(addresses)} source address(es) …"
            )
            log_offset = broker_log_size(Path(settings.BROKER_DIR))
            load = LoadGenerator(spec, devices, process_count)
            pids["load generator"] += load.pids
            ramping = Usage(dict(pids))
            ramping.start()
            timeline = Timeline(load)
            ramp_seconds, points = ramp(load, samples, timeline)
            cpu_rows.append(("ramp", ramp_seconds, ramping.stop(ramp_seconds)))
            peak = load.total("connected")
            samples.take("all connected" if peak == args.devices else "peak", peak)
            failures = load.merged("failures")
            print(f"  {peak:,} connected in {ramp_seconds:.0f} s; {sum(failures.values())} failed")

            catching_up = Usage(dict(pids))
            catching_up.start()
            caught_up = catch_up(timeline, peak)
            cpu_rows.append(("the portal catching up", caught_up, catching_up.stop(caught_up)))

            seconds = minutes * 60
            steady = Usage(dict(pids))
            start = time.time() + 2
            for process, first in zip(load.processes, load.first_numbers(), strict=True):
                load.order({"steady": [start, seconds, first, peak]}, [process])
            time.sleep(2)
            steady.start()
            while not load.all_at("steady"):
                timeline.sample("steady state")
                time.sleep(10.0)
                if any(p.poll() is not None for p in load.processes):
                    raise RuntimeError("a load-generator process ended during the steady state")
            timeline.sample("steady state, drained")
            cpu_rows.append((f"steady state, {peak:,} connected", seconds, steady.stop(seconds)))
            samples.take("after the steady state", load.total("online"))
            broker_files = open_files_limit(mosquitto.pid)
            # What the bridge made of the broker's connect lines: every device online?
            online_in_portal = Presence.objects.filter(online=True).count()
            errors = broker_errors(Path(settings.BROKER_DIR), log_offset)
        finally:
            if load is not None:
                load.stop()
            for process in bridge:
                stop(process)
            stop(mosquitto)

    versions = Shadow.objects.aggregate(total=Sum("version"), shadows=Count("id"))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    updates, accepted = load.total("updates"), load.total("accepted")
    print(
        f"\n{os.cpu_count()} CPUs; {args.devices:,} devices; {process_count} load-generator "
        f"processes; source addresses {addresses[0]}…{addresses[-1]}; open files: bench "
        f"{open_files:,} (hard {open_files_hard:,}), broker {broker_files}; load average "
        f"{' '.join(load_before)} before, {' '.join(load_after)} after\n"
    )
    print("| figure | value |\n|---|---:|")
    rows = [
        ("devices connected at the peak", f"{peak:,} of {args.devices:,}"),
        ("connect rate, whole ramp (connections/s)", f"{peak / ramp_seconds:,.0f}"),
        (
            "connect rate, 10 % to 90 % of the ramp (connections/s)",
            f"{middle_rate(points, peak):,.0f}",
        ),
        ("failed connections", f"{sum(failures.values()):,}"),
        (
            "the portal caught up after the ramp (s: presence online, outbox empty)",
            f"{caught_up:.0f}",
        ),
        ("TCP connect, p50 / p99 (worst process, ms)", _latency(load, "tcp")),
        (
            "connect until subscribed (TCP, TLS, CONNACK, SUBACK), p50 / p99 (ms)",
            _latency(load, "connect"),
        ),
        (f"steady state ({minutes:g} min): updates sent", f"{updates:,}"),
        ("updates PUBACKed by the broker", f"{load.total('pubacks'):,}"),
        ("updates accepted (update/accepted received)", f"{accepted:,}"),
        (
            "updates rejected / unanswered",
            f"{load.total('rejected'):,} / {load.total('unanswered'):,}",
        ),
        ("accepted / sent", f"{100 * accepted / updates:.2f} %" if updates else "—"),
        ("latency update → accepted, p50 / p99 (worst process, ms)", _latency(load)),
        (
            "shadow versions written (database)",
            f"{versions['total'] or 0:,} in {versions['shadows']:,} shadows",
        ),
        ("devices online in the portal (presence, from the broker's log)", f"{online_in_portal:,}"),
        ("pings sent / answered", f"{load.total('pings'):,} / {load.total('pingresps'):,}"),
        ("connections dropped in the steady state", f"{sum(load.merged('dropped').values()):,}"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    record_figures(args, peak, ramp_seconds, updates, accepted)
    print_memory(samples)
    print()
    print_cpu(cpu_rows)
    print()
    timeline.print()
    if failures:
        print("\nWhat failed (count, first five kinds):")
        for reason, count in failures.most_common(5):
            print(f"  {count:>6}  {reason}")
    if load.merged("dropped"):
        print("\nDropped:", dict(load.merged("dropped")))
    if errors:
        print("\nThe broker's log, last error lines:")
        for line in errors:
            print(f"  {line}")


def record_figures(args, peak: int, ramp_seconds: float, updates: int, accepted: int) -> None:
    """Issue 16: 50,000 connections held, every update accepted (bench/report.py)."""
    report.size(devices=args.devices)
    report.record("connections held", peak, "connections", better=report.HIGHER, target=50_000)
    report.record("connect rate over the ramp", peak / ramp_seconds, "/s")
    share = 100 * accepted / updates if updates else None
    report.record("updates accepted", share, "%", better=report.HIGHER, target=100)


def _latency(load: LoadGenerator, name: str = "latency") -> str:
    p50, p99 = load.worst(f"{name}_p50"), load.worst(f"{name}_p99")
    if p50 is None:
        return "—"
    return f"{p50 * 1000:.0f} / {p99 * 1000:.0f}"


if __name__ == "__main__":
    main()
