"""What the benchmarks ran on: cores, memory, CPU, and the versions of what they measure.

Each figure means little without the machine, so bench/run_all.py records this at the start of
a run and the page prints it. Anything that cannot be asked (a service down) reads "unknown"
with the reason, rather than failing the run before it starts.
"""

import os
import platform
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def describe(database_url: str, redis_url: str, mosquitto: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _ask(cpu_model),
        "memory": _ask(memory),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": _ask(lambda: metadata.version("django")),
        "postgresql": _ask(lambda: postgresql_version(database_url)),
        "redis": _ask(lambda: redis_version(redis_url)),
        "mosquitto": _ask(lambda: mosquitto_version(mosquitto)),
        "commit": _ask(commit),
        "load_average": " / ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return "unknown"


def postgresql_version(database_url: str) -> str:
    import psycopg

    # The server's maintenance database: the scratch databases may not exist yet.
    with psycopg.connect(database_url, dbname="postgres", connect_timeout=5) as connection:
        return connection.execute("SHOW server_version").fetchone()[0]


def redis_version(redis_url: str) -> str:
    import redis

    return redis.Redis.from_url(redis_url, socket_timeout=5).info("server")["redis_version"]


def mosquitto_version(binary: str) -> str:
    # `mosquitto -h` prints its version on the first line and exits with status 3.
    output = subprocess.run(  # noqa: S603
        [binary, "-h"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    return output.splitlines()[0].removeprefix("mosquitto version ").strip()


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if changed else "")


def _ask(question: Callable[[], str]) -> str:
    try:
        return question()
    except Exception as error:
        return f"unknown ({type(error).__name__}: {error})"
