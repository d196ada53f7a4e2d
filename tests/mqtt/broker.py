"""A real Mosquitto started from the portal's generated configuration, on free ports."""

import contextlib
import ctypes
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.test import override_settings

from devices import pki
from fleetportal import broker as broker_config

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """A test run killed outright (SIGKILL) must not leave brokers behind on random ports."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


@dataclass
class Mosquitto:
    """The session's brokers (the broker and the claim broker, as `make run` starts them): their
    CA, directory and ports; stop()/start() for outage tests."""

    ca: pki.CertificateAuthority
    ca_dir: Path
    dir: Path
    host: str
    device_port: int
    claim_port: int
    backend_port: int
    process: subprocess.Popen | None = None
    claim_process: subprocess.Popen | None = None
    _log_offset: int = 0

    @property
    def chain_file(self) -> Path:
        return self.dir / broker_config.CA_FILE

    @property
    def ports(self) -> list[int]:
        return [self.device_port, self.claim_port, self.backend_port]

    def start(self, timeout: float = 10.0) -> None:
        self._log_offset = len(self.log())
        self.process = _mosquitto(self.dir / broker_config.CONFIG)
        self.claim_process = _mosquitto(self.dir / broker_config.CLAIM_CONFIG)
        deadline = time.monotonic() + timeout
        while not all(port_open(port) for port in self.ports) or not self.claim_bridged():
            for process in (self.process, self.claim_process):
                if process.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"brokers not ready on {self.ports}:\n{self.log()}\n{self.claim_log()}"
                )
            time.sleep(0.05)

    def claim_bridged(self) -> bool:
        """The claim broker's bridge connection is up (the broker logged its client id)."""
        return f" as {broker_config.CLAIM_BRIDGE_CLIENT_ID} " in self.log()[self._log_offset :]

    def stop(self) -> None:
        for process in (self.claim_process, self.process):
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.process = self.claim_process = None

    @contextlib.contextmanager
    def stopped(self):
        """The broker is down inside the block and back up after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def publish_crl(self, revoked: list[tuple[int, object, str | None]]) -> bool:
        """Install a CRL listing (serial, revoked_at, reason) and wait for the reload."""
        pem = pki.build_crl(self.ca, revoked, next_update_hours=48)
        return broker_config.publish_crl(pem)

    def log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return (self.dir / broker_config.LOG_FILE).read_text()
        return ""

    def claim_log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return (self.dir / broker_config.CLAIM_DIR / broker_config.LOG_FILE).read_text()
        return ""


def _mosquitto(config: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [settings.MOSQUITTO_BINARY, "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )


def start_mosquitto(directory: Path) -> tuple[Mosquitto, override_settings]:
    """Create a CA, enable settings pointing at it and at free ports, write the config, start."""
    ca_dir, broker_dir = directory / "ca", directory / "broker"
    ca = pki.create_ca(ca_dir, common_name_prefix="fleetportal-test")
    pki.write_server_files(ca_dir, *pki.server_certificate(ca, ["localhost"], ["127.0.0.1"]))
    device_port, claim_port, backend_port = free_ports(3)
    override = override_settings(
        FLEETPORTAL_CA_DIR=ca_dir,
        FLEETPORTAL_CA_PASSPHRASE=None,
        BROKER_DIR=broker_dir,
        BROKER_HOST="127.0.0.1",
        BROKER_DEVICE_PORT=device_port,
        BROKER_CLAIM_PORT=claim_port,
        BROKER_BACKEND_PORT=backend_port,
        BROKER_BACKEND_PASSWORD="",
    )
    override.enable()
    broker_config.write_config(
        [], crl_pem=pki.build_crl(ca, [], next_update_hours=48), bind_address="127.0.0.1"
    )
    mosquitto = Mosquitto(
        ca, ca_dir, broker_dir, "127.0.0.1", device_port, claim_port, backend_port
    )
    try:
        mosquitto.start()
    except BaseException:
        override.disable()
        raise
    return mosquitto, override
