"""`manage.py runbridge` as a real subprocess on this test session's database and broker."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def bridge_env(broker) -> dict[str, str]:
    """The environment a bridge process needs to reach this test's database and broker."""
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"))
    return {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])),
        "FLEETPORTAL_SECRET_KEY": "test-only-not-secret",
        "FLEETPORTAL_CA_DIR": str(settings.FLEETPORTAL_CA_DIR),
        "FLEETPORTAL_BROKER_DIR": str(broker.dir),
        "FLEETPORTAL_BROKER_HOST": broker.host,
        "FLEETPORTAL_BROKER_DEVICE_PORT": str(broker.device_port),
        "FLEETPORTAL_BROKER_CLAIM_PORT": str(broker.claim_port),
        "FLEETPORTAL_BROKER_BACKEND_PORT": str(broker.backend_port),
        "FLEETPORTAL_BROKER_BACKEND_PASSWORD": "",
        "PYTHONUNBUFFERED": "1",
        # These tests push hundreds of messages a second per device through a crashing bridge;
        # the per-device throttle (tests/test_device_flood.py) would drop them by design.
        "FLEETPORTAL_DEVICE_MESSAGES_PER_SECOND": "0",
    }


class BridgeProcess:
    def __init__(self, broker, log_file: Path, *args: str):
        self.env = bridge_env(broker)
        self.log_file = log_file
        self.args = list(args)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, str(ROOT / "manage.py"), "runbridge", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no clean disconnect, no rollback, no ack — a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def persistent_bridge_session() -> Iterator[None]:
    """The single bridge's persistent session exists (and queues) before the process first
    starts, and is dropped afterwards so nothing queues for it after the test."""
    from fleetportal.bridge import router
    from fleetportal.bridge.runner import BRIDGE_CLIENT_ID
    from fleetportal.bridge.transport import Connection

    session = Connection(BRIDGE_CLIENT_ID, clean_session=False)
    session.subscribe(router.subscriptions())
    session.connect(timeout=5)
    assert session.wait_subscribed(5)
    session.close()
    try:
        yield
    finally:
        session = Connection(BRIDGE_CLIENT_ID, clean_session=True)
        session.connect(timeout=5)
        session.close()
