#!/usr/bin/env python
"""The soak (issue 16, item 5): the whole portal under a simulated fleet for a long while, faults
injected, then an integrity check.

    flock /tmp/bench.lock .venv/bin/python bench/soak.py [--minutes 30] [--devices 2000]

Into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_soak, dropped and made
again) and Redis database (BENCH_REDIS_URL, default redis://127.0.0.1:6379/15, emptied), with its
own CA, broker configuration, firmware key and files under var/soak/, it starts the portal as
bin/run does — Mosquitto and the claim broker, the bridge and the outbox publisher, a Celery
worker and beat, the web server (it serves the firmware downloads) — each under
bin/supervise.sh, and --devices simulated devices (bench/soak_fleet.py, a process of its own)
with the rehearsal profile's faults, which provision themselves by claim. Over --minutes:

- configuration changes on the fleet's group (set, changed, removed);
- a staged rollout of firmware 2.0.0 (10 %, then the rest; the profile's update failures);
- certificate rotations (5 % of the devices) and devices dropping off and returning;
- the bridge killed with SIGKILL at 30 % of the run and the worker at 50 %, restarted by their
  supervisor.

Then, with the fleet still up: no outbox row older than a minute, no open alert for a device the
profile left healthy; with the fleet stopped: every shadow's history contiguous, every job
execution in the state its device's own record says. And the resident memory of each process at
the start (after the warm-up) and the end: flat within 10 %. Prints a table; exits 1 if a check
fails. Logs of every piece in var/soak/logs/.
"""

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MARKER = "SOAK"

from bench.ports import free_ports  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="How long (default 30).")
    parser.add_argument("--devices", type=int, default=2000, help="How many (default 2000).")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var" / "soak")
    parser.add_argument("--fleet", nargs=2, type=Path, help=argparse.SUPPRESS)  # SETUP RECORD
    return parser.parse_args()


def configure(args: argparse.Namespace) -> dict[str, int]:
    """The environment every piece and this process share; returns the ports."""
    device, claim, backend, web = free_ports(4)
    confirm = max(2, round(args.minutes / 3))
    os.environ.update(
        {
            "DATABASE_URL": os.environ.get(
                "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_soak"
            ),
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "DJANGO_SETTINGS_MODULE": "fleetportal.settings",
            "FLEETPORTAL_VAR_DIR": str(args.var_dir),
            "FLEETPORTAL_BROKER_HOST": "127.0.0.1",
            "FLEETPORTAL_BROKER_DEVICE_PORT": str(device),
            "FLEETPORTAL_BROKER_CLAIM_PORT": str(claim),
            "FLEETPORTAL_BROKER_BACKEND_PORT": str(backend),
            "FLEETPORTAL_PUBLIC_URL": f"http://127.0.0.1:{web}",
            "FLEETPORTAL_FIRMWARE_CONFIRM_MINUTES": str(confirm),
            "FLEETPORTAL_LOG_LEVEL": "WARNING",
            "FLEETPORTAL_ALERT_EVALUATION_SECONDS": "15",
            "PYTHONUNBUFFERED": "1",  # the pieces' logs as they happen
        }
    )
    os.environ.setdefault("FLEETPORTAL_SECRET_KEY", "bench-only-not-secret")
    # The simulated fleet runs as bin/run runs the simulator: with bin/supervise.sh's malloc
    # thresholds (the portal's pieces get them from it).
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "131072")
    os.environ.pop("CELERY_BROKER_URL", None)
    return {"device": device, "claim": claim, "backend": backend, "web": web}


def fresh_directory(var: Path) -> None:
    """An empty var directory: the database is new, so no device may keep a certificate."""
    if var.exists():
        if any(var.iterdir()) and not (var / MARKER).exists():
            raise SystemExit(f"soak: {var} exists and is not a soak's directory; choose another")
        shutil.rmtree(var)
    var.mkdir(parents=True)
    (var / MARKER).write_text("bench/soak.py's files; emptied by each run\n")


def fresh_database_and_redis() -> None:
    import psycopg
    import redis

    url = urlsplit(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    assert "bench" in name or "soak" in name, f"refusing to drop {name}: not a bench database"
    server = url._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    db = urlsplit(os.environ["REDIS_URL"]).path.lstrip("/") or "0"
    assert db != "0", "refusing to empty Redis database 0: set BENCH_REDIS_URL"
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def timing(minutes: float) -> dict[str, float]:
    seconds = minutes * 60
    return {
        "report_seconds": 60,
        "telemetry_seconds": 30,
        "reboot_seconds": 10,
        "offline_every_seconds": min(600, seconds / 4),
        "offline_seconds": 30,
        "rotate_after_seconds": min(300, seconds / 5),
        "malformed_every_seconds": min(300, seconds / 6),
        "connect_spread_seconds": 30,
    }


def main() -> int:
    args = parse_args()
    if args.fleet:  # the simulated fleet's own process (bench/soak_fleet.py)
        from bench.soak_fleet import main as fleet

        return fleet(*args.fleet)
    fresh_directory(args.var_dir)
    ports = configure(args)
    fresh_database_and_redis()
    import django

    django.setup()
    from bench import soak_run

    result = soak_run.run(args.minutes, args.devices, args.var_dir, ports, timing(args.minutes))
    record(result, args)
    return 1 if result.failed else 0


def record(result, args: argparse.Namespace) -> None:
    """The figures for `make bench` (bench/report.py), when that protocol is there."""
    try:
        from bench import report
    except ImportError:
        return
    report.size(devices=args.devices, minutes=args.minutes)
    for check in result.checks:
        if check.name == "resident memory flat":
            continue
        report.record(f"{check.name}: problems", check.count, "", better=report.LOWER, target=0)
    for name, start in result.memory_start.items():
        end = result.memory_end[name]
        report.record(
            f"resident memory end/start: {name}",
            end / start if start else None,
            "x",
            better=report.LOWER,
            target=1.10,
            note=f"{start / 2**20:.0f} MiB at the start, {end / 2**20:.0f} MiB at the end",
        )


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
