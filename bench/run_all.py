#!/usr/bin/env python
"""Run every benchmark of the suite (bench/suite.py) and write docs/benchmarks.md from the
figures they recorded.

    .venv/bin/python bench/run_all.py [--full]        # make bench [FULL=1]
    .venv/bin/python bench/run_all.py --only flood    # make bench ONLY=flood
    .venv/bin/python bench/run_all.py --page-only     # the page again from docs/benchmarks.jsonl

Holds /tmp/bench.lock for the whole run (benchmarks on a shared machine wait for each other).
Each script runs as its own process, in a scratch database of its own: BENCH_DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/fleetportal_bench) suffixed with the run's size and
the entry's database (…_quick_fleet), kept between runs. Its output goes to the console and to
var/bench/NAME.log; its figures, as JSON lines (bench/report.py), to var/bench/results.jsonl.
The run's lines then become docs/benchmarks.jsonl — with --only, they replace those entries'
lines there and the other entries keep theirs — and docs/benchmarks.md is written from that
file (bench/benchmarks_page.py), each section saying when it was measured.
"""

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import benchmarks_page, machine, report  # noqa: E402
from bench.suite import SUITE, Bench, by_name  # noqa: E402

LOCK = Path("/tmp/bench.lock")  # noqa: S108 - the machine's one benchmark lock, shared by design
OUTPUT = ROOT / "var" / "bench"
RESULTS = OUTPUT / "results.jsonl"  # this run's lines
PAGE = ROOT / "docs" / "benchmarks.md"
KEPT_RESULTS = ROOT / "docs" / "benchmarks.jsonl"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/fleetportal_bench"
# A script that hangs must not hold the machine's lock for ever.
TIMEOUT_SECONDS = {False: 30 * 60, True: 4 * 60 * 60}


def database_for(base: str, bench: Bench, full: bool) -> str:
    """The entry's scratch database: the base URL's database name + size + the entry's own."""
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/')}_{'full' if full else 'quick'}"
    if bench.database:
        name += f"_{bench.database}"
    return urlunsplit(parts._replace(path=f"/{name}"))


def run_one(bench: Bench, full: bool, results: Path, base: str) -> dict:
    """Run one entry; returns its `script` line (how it ended, how long it took)."""
    command = [sys.executable, *bench.arguments(full)]
    env = {
        **os.environ,
        report.RESULTS_ENV: str(results),
        report.NAME_ENV: bench.name,
        "BENCH_DATABASE_URL": database_for(base, bench, full),
        "PYTHONUNBUFFERED": "1",
    }
    print(f"\n=== {bench.name}: {' '.join(bench.arguments(full))}", flush=True)
    started = time.monotonic()
    log = OUTPUT / f"{bench.name}.log"
    with log.open("w", encoding="utf-8") as output:
        status = _follow(command, env, output, TIMEOUT_SECONDS[full])
    seconds = time.monotonic() - started
    print(f"=== {bench.name}: {'ok' if status == 0 else f'status {status}'}, {seconds:.0f} s")
    return {
        "kind": "script",
        "name": bench.name,
        "title": bench.title,
        "script": bench.script,
        "command": bench.arguments(full),
        "status": status,
        "seconds": seconds,
        "expects": list(bench.expects),
        "log": str(log.relative_to(ROOT)),
    }


def _follow(command: list[str], env: dict[str, str], output, timeout: float) -> int:
    """Run the script, its output copied to the console and its log, for at most `timeout`
    seconds. It runs in a process group of its own, which is ended when the script ends, times
    out or is interrupted: a bench that failed halfway leaves no broker or bridge behind."""
    process = subprocess.Popen(  # noqa: S603
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    copier = threading.Thread(target=_copy, args=(process.stdout, output), daemon=True)
    copier.start()
    try:
        status = process.wait(timeout)
    except subprocess.TimeoutExpired:
        _end_group(process.pid)
        status = process.wait()
        output.write(f"run_all: stopped after {timeout:.0f} s (the suite's limit for a script)\n")
        print(f"run_all: stopped after {timeout:.0f} s", flush=True)
    except KeyboardInterrupt:
        _end_group(process.pid)
        raise
    _end_group(process.pid)
    copier.join(10)
    return status


def _copy(stream, output) -> None:
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
        output.write(line)


def _end_group(group: int) -> None:
    """End what is left of a script's process group: politely, then for sure."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        if not _running_in(group):
            return
        try:
            os.killpg(group, signal_number)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _running_in(group):
            time.sleep(0.1)


def _running_in(group: int) -> bool:
    """Whether a process of the group still runs (zombies waiting to be reaped do not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]  # after "pid (comm)"
        except OSError:
            continue  # ended meanwhile
        if int(pgrp) == group and state not in ("Z", "X"):
            return True
    return False


def run(benches: list[Bench], full: bool, results: Path) -> None:
    """Run the entries one after another; every line goes to `results` as soon as it exists,
    so a run stopped halfway keeps what it measured."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    results.write_text("")
    base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    description = machine.describe(
        base,
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get("FLEETPORTAL_MOSQUITTO_BINARY", "/usr/sbin/mosquitto"),
    )
    report.append(results, {"kind": "run", "started": started, "machine": description})
    for bench in benches:
        line = run_one(bench, full, results, base)
        report.append(results, {**line, "run": started, "mode": "full" if full else "quick"})


def merge(kept: list[dict], new: list[dict]) -> list[dict]:
    """The kept results with the entries run again replaced by their new lines, in the suite's
    order; a run none of the remaining entries came from is dropped."""

    rerun = {line["name"] for line in new if line["kind"] == "script"}
    entries = [line for line in kept if line["kind"] != "run" and _entry(line) not in rerun]
    entries += [line for line in new if line["kind"] != "run"]
    used = {line.get("run") for line in entries if line["kind"] == "script"}
    runs = [line for line in kept + new if line["kind"] == "run" and line["started"] in used]
    return runs + _in_suite_order(entries)


def _entry(line: dict) -> str:
    return line["name"] if line["kind"] == "script" else line.get("bench", "")


def _in_suite_order(lines: list[dict]) -> list[dict]:
    order = {bench.name: number for number, bench in enumerate(SUITE)}
    return sorted(lines, key=lambda line: order.get(_entry(line), len(order)))


def write(lines: list[dict], kept: Path, page: Path) -> None:
    kept.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    page.write_text(
        benchmarks_page.render(_in_suite_order(lines + not_run(lines))), encoding="utf-8"
    )
    print(f"wrote {_shown(page)} and {_shown(kept)}")


def not_run(lines: list[dict]) -> list[dict]:
    """A line for each entry of the suite the results have nothing of, so the page lists it
    as not run yet (its expected figures missing) rather than leaving it out."""
    ran = {line["name"] for line in lines if line["kind"] == "script"}
    return [
        {
            "kind": "script",
            "name": bench.name,
            "title": bench.title,
            "script": bench.script,
            "command": bench.arguments(False),
            "expects": list(bench.expects),
        }
        for bench in SUITE
        if bench.name not in ran
    ]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def hold_lock():
    """The machine's benchmark lock, held until this process ends."""
    handle = LOCK.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for {LOCK} (another benchmark is running) …", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issues' sizes (about an hour)")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run these entries; keep the others' figures"
    )
    parser.add_argument("--kept", type=Path, default=KEPT_RESULTS, help="the results kept")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page written from them")
    parser.add_argument(
        "--page-only", action="store_true", help="write the page from the kept results; run nothing"
    )
    parser.add_argument("--list", action="store_true", help="print the suite and its commands")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if args.list:
        for bench in SUITE:
            print(f"{bench.name:<18} {' '.join(bench.arguments(args.full))}")
        return
    if args.page_only:
        write(report.read(args.kept), args.kept, args.page)
        return
    benches = by_name(args.only) if args.only else SUITE
    lock = hold_lock()
    try:
        run(benches, args.full, RESULTS)
    finally:
        lock.close()
    kept = report.read(args.kept) if args.only and args.kept.exists() else []
    write(merge(kept, report.read(RESULTS)), args.kept, args.page)


if __name__ == "__main__":
    main()
