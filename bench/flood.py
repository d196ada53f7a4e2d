"""One device floods the broker; how long do the other devices' shadow updates take meanwhile?

    .venv/bin/python bench/flood.py [--devices 10] [--rate 200] [--seconds 10]

Ten well-behaved devices send --rate shadow updates/s in all (open loop) through Mosquitto and
one bridge process (`manage.py runbridge`), timed from publish to update/accepted. A separate
process, the flooder, publishes 5,000 malformed updates as fast as it can every 2 s (QoS 0, the
cheapest way to flood). Three runs, each with a bridge of its own, in this process and order:

1. no flood (the baseline);
2. the flood with the per-device limit off (FLEETPORTAL_DEVICE_MESSAGES_PER_SECOND=0): neither
   the broker's plugin nor the bridge's throttle;
3. the flood with the default limit (100/s, burst 100), which the broker enforces (the broker is
   restarted with its limit plugin, mosquitto/fleetportal_limits.c) and the bridge backs up;
4. the same with the flooder at `nice 19`: a real device encrypts its flood on its own CPU, not on
   the portal's, and this is as close as one machine with two cores comes to that.

Uses the shadow bench's scratch database (BENCH_DATABASE_URL). Prints a markdown table.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.core.management import call_command
from django.test import override_settings

from bench import report, shadows
from bench.broker_support import restart_broker, start_broker
from bench.django_setup import empty_device_tables
from devices import services
from devices.choices import DeviceStatus
from devices.models import Device

FLOOD_BURST = 5_000
FLOOD_EVERY = 2.0


def flood_main(device_dir: Path, niceness: int) -> None:
    """The flooding device, as a process of its own so its publishing costs the load no CPU."""
    os.nice(niceness)
    load = shadows.Load()
    device = shadows.SimDevice("flood-0", device_dir, load)
    topic = device.topic
    print("flood: ready", flush=True)
    while True:
        started = time.monotonic()
        for _ in range(FLOOD_BURST):
            device.client.publish(topic, b"not json", qos=0)
        time.sleep(max(0.0, FLOOD_EVERY - (time.monotonic() - started)))


def run(load, env, *, flood: int | None, limit: str, rate: float, seconds: float, clients: Path):
    """One run; `flood` is the flooder's niceness, None for no flooder."""
    bridge_env = {**env, "FLEETPORTAL_DEVICE_MESSAGES_PER_SECOND": limit}
    bridges = shadows.start_bridges(bridge_env, 1, split=False)
    flooder = None
    try:
        time.sleep(2.0)
        if flood is not None:
            flooder = shadows.start_process(
                ["bench/flood.py", "--flooder", str(clients), "--nice", str(flood)],
                env,
                ready="flood: ready",
            )
            time.sleep(1.0)
        return load.steady(rate, seconds)
    finally:
        if flooder is not None:
            shadows.stop_process(flooder)
        for process in bridges:
            shadows.stop_process(process)
        shadows.forget_sessions(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flooder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flooder:
        flood_main(args.flooder, args.nice)
        return

    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    empty_device_tables()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        mosquitto, env = start_broker(directory)
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
        load = shadows.Load()
        try:
            device_ids = [f"bench-{n:04d}" for n in range(args.devices)] + ["flood-0"]
            for device_id in device_ids:
                services.register_device(
                    {"device_id": device_id, "device_type": "bench"}, actor="bench"
                )
            Device.objects.update(status=DeviceStatus.ACTIVE)
            clients = directory / "clients"
            clients.mkdir()
            broker_limit = None
            for name, flood, limit in (
                ("no flood (baseline)", None, "0"),
                ("flood, no per-device limit", 0, "0"),
                ("flood, limit 100/s, burst 100", 0, "100"),
                ("flood, limit 100/s, burst 100, flooder at nice 19", 19, "100"),
            ):
                if limit != broker_limit:
                    for device in load.devices:
                        device.close()
                    with override_settings(DEVICE_MESSAGES_PER_SECOND=int(limit)):
                        mosquitto = restart_broker(mosquitto, directory)
                    load.devices = [shadows.SimDevice(d, clients, load) for d in device_ids[:-1]]
                    broker_limit = limit
                sent, latencies = run(
                    load,
                    env,
                    flood=flood,
                    limit=limit,
                    rate=args.rate,
                    seconds=args.seconds,
                    clients=clients,
                )
                rows.append((name, sent, latencies))
        finally:
            for device in load.devices:
                device.close()
            shadows.stop_process(mosquitto)

    print(
        f"\n{os.cpu_count()} CPUs; {args.devices} devices sending {args.rate:,.0f} updates/s in "
        f"all for {args.seconds:.0f} s; the flooder sends {FLOOD_BURST:,} malformed messages "
        f"every {FLOOD_EVERY:.0f} s\n"
    )
    print("| run | updates answered | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, _, latencies in rows:
        p = shadows.percentile
        print(
            f"| {name} | {len(latencies):,} | {p(latencies, 0.5):.1f} | "
            f"{p(latencies, 0.95):.1f} | {p(latencies, 0.99):.1f} |"
        )
    record(rows, args)


def record(rows: list[tuple], args) -> None:
    """Issue 10: the others' p99 under 100 ms during a flood, with the limit; the flood with no
    limit is what the limit is measured against, the run without a flood is the floor."""
    report.size(devices=args.devices, rate=args.rate, seconds=args.seconds)
    p99 = {name: shadows.percentile(latencies, 0.99) for name, _, latencies in rows}
    floor, unlimited = (name for name, _, _ in rows[:2])
    for name, _, _ in rows:
        limited = "limit 100/s" in name
        baseline = unlimited if limited else floor if name != floor else None
        report.record(
            f"{name}: the others' p99",
            p99[name],
            "ms",
            target=100 if limited else None,
            baseline=f"{baseline}: the others' p99" if baseline else None,
            baseline_value=p99[baseline] if baseline else None,
        )


if __name__ == "__main__":
    main()
