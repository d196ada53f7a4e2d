"""A private PostgreSQL cluster for one test: initdb in a temporary directory, a free port.

For tests that stop or crash the database server. The machine's shared cluster (port 5432)
serves other test sessions and must never be restarted, so such tests get a cluster of their
own from the same binaries. PostgreSQL refuses to run as root: when the tests run as root the
cluster belongs to the `postgres` OS user (commands through runuser), in a directory it owns.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.mqtt.broker import free_ports

SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries or the OS user to run them as cannot be found."""


def find_bindir() -> Path:
    """The directory of initdb/pg_ctl: `pg_config --bindir`, else the newest Debian install."""
    candidates = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        candidates.append(
            subprocess.run(
                ["pg_config", "--bindir"],  # noqa: S607
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    # Debian's /usr/bin/pg_config belongs to libpq-dev and names /usr/bin, which holds only
    # wrappers; the server binaries live under /usr/lib/postgresql/<major>/bin.
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    raise PostgresUnavailable(
        "No PostgreSQL server binaries (initdb, pg_ctl) found via `pg_config --bindir` or in "
        "/usr/lib/postgresql/*/bin; install the postgresql package."
    )


class PrivatePostgres:
    """One throwaway cluster: start(), stop(mode), restart(mode, down_for), destroy()."""

    def __init__(self, bindir: Path | None = None):
        self.bindir = bindir or find_bindir()
        self.port = free_ports(1)[0]
        self.as_user = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="fp-private-pg-"))
        self.data = self.root / "data"
        self.log_file = self.root / "server.log"
        if self.as_user:
            try:
                account = pwd.getpwnam(SERVER_USER)
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PostgresUnavailable(
                    f"Running as root and there is no {SERVER_USER!r} OS user to run "
                    "PostgreSQL as (initdb and postgres refuse root)."
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        command = [str(self.bindir / tool), *args]
        if self.as_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{self.log()}"
            )
        return result.stdout

    def init(self) -> None:
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",  # a throwaway cluster: initdb's own fsyncs cost seconds
        )
        options = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "30",
            "shared_buffers": "32MB",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in options.items())

    def start(self, timeout: float = 30) -> None:
        self._run(
            "pg_ctl", "start", "--pgdata", str(self.data), "--log", str(self.log_file), "--wait",
            "--timeout", str(int(timeout)),
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", mode, "--wait")

    def restart(self, mode: str, down_for: float) -> None:
        """Stop the server (`fast`: clean; `immediate`: crash-like, recovery at start), stay
        down for `down_for` seconds, start it again."""
        self.stop(mode)
        time.sleep(down_for)
        self.start()

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def connect(self, dbname: str, **options) -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), connect_timeout=2, **options)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-4000:]
        return ""

    def destroy(self) -> None:
        """Stop the server (if it runs) and remove the directory; safe to call twice."""
        try:
            if self.running():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
