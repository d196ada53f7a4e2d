"""Helpers for the provisioning tests: a CA and broker directory, CSRs, templates."""

import os
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import connection
from kombu import pools

from devices import pki, revocation
from devices.models import ProvisioningTemplate
from fleetportal import broker
from fleetportal.celery import app


def make_csr(common_name: str | None, key=None) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    with warnings.catch_warnings():
        # _validate=False lets a test build the over-long CN some devices send.
        warnings.simplefilter("ignore", UserWarning)
        names = (
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)]
            if common_name
            else []
        )
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    pem = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    return key, pem


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def make_template(name: str = "factory", **fields) -> ProvisioningTemplate:
    fields.setdefault("device_type", "sensor")
    return ProvisioningTemplate.objects.create(name=name, **fields)


def held_serials() -> dict[int, str | None]:
    """The CRL the broker would load now: serial -> reason name."""
    crl = x509.load_pem_x509_crl(broker.path(broker.CRL_FILE).read_bytes())
    reasons = {}
    for entry in crl:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        except x509.ExtensionNotFound:
            reason = None
        reasons[entry.serial_number] = reason
    return reasons


def create_pki(directory: Path) -> None:
    """A CA with the broker's server files and a broker directory (no broker running)."""
    ca = pki.create_ca(directory / "ca")
    pki.write_server_files(directory / "ca", *pki.server_certificate(ca, ["localhost"], []))


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("claim-pki")
    create_pki(directory)
    return directory


@pytest.fixture
def identity_env(settings, pki_dir, tmp_path, db):
    """Settings pointing at a CA and a fresh broker directory holding the current CRL."""
    settings.FLEETPORTAL_CA_DIR = pki_dir / "ca"
    settings.FLEETPORTAL_CA_PASSPHRASE = None
    settings.BROKER_DIR = tmp_path / "broker"
    broker.write_config([], crl_pem=revocation.build_current_crl())
    return pki_dir


# --- a real Celery worker on the test database -------------------------------------------------


class CeleryWorker:
    """`celery -A fleetportal worker -P solo` as a subprocess, on this session's test database.

    It consumes a queue of its own on a Redis database chosen per xdist worker, so parallel
    test processes (and other test sessions on the machine) never take each other's tasks.
    """

    def __init__(
        self,
        database: str,
        ca_dir: Path,
        log_file: Path,
        worker_id: str,
        *,
        queue: str | None = None,
        program: tuple[str, ...] = ("worker", "-P", "solo"),
        **env: str,
    ):
        number = 0 if worker_id == "master" else int(worker_id.removeprefix("gw")) + 1
        self.broker_url = f"redis://127.0.0.1:6379/{10 + number % 6}"
        self.queue = queue or f"fleetportal-test-{uuid.uuid4().hex[:12]}"
        self.log_file = log_file
        self.program = program
        url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"))
        self.env = {
            **os.environ,
            "DATABASE_URL": urlunsplit(url._replace(path="/" + database)),
            "CELERY_BROKER_URL": self.broker_url,
            # Where this process's own tasks go (beat's schedule, the worker's start-up sweep).
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "FLEETPORTAL_CA_DIR": str(ca_dir),
            "FLEETPORTAL_SECRET_KEY": "test-only-not-secret",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0, ready: bytes = b"ready.") -> None:
        celery = Path(sys.executable).parent / "celery"
        arguments = [str(celery), "-A", "fleetportal", *self.program]
        if self.program[0] == "worker":
            arguments += [
                *("-Q", self.queue, "--without-heartbeat", "--without-mingle"),
                *("--without-gossip", "--hostname", f"{self.queue}.{uuid.uuid4().hex[:6]}@%h"),
            ]
        with self.log_file.open("ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(  # noqa: S603
                [*arguments, "--loglevel", "INFO"],
                env=self.env,
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while ready not in self.log_file.read_bytes()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery {self.program[0]} did not start:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9: no shutdown, no acknowledgement, the task stays reserved in Redis."""
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def route_tasks_to(broker_url: str | None, queue: str | None) -> None:
    """Make this process's Celery app send to broker_url/queue (None: back to the settings)."""
    app.conf.broker_url = broker_url or settings.CELERY_BROKER_URL
    app.conf.task_default_queue = queue or "celery"
    # Connections and queue declarations are cached on first use; start them afresh.
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.__dict__.pop("amqp", None)
    # kombu also keeps producer pools per connection; a closed one must not be handed out again.
    pools.reset()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, pki_dir, tmp_path_factory, worker_id):
    worker = CeleryWorker(
        connection.settings_dict["NAME"],
        pki_dir / "ca",
        tmp_path_factory.mktemp("celery") / "worker.log",
        worker_id,
    )
    yield from running(worker)


def running(worker: "CeleryWorker"):
    """Starts the worker and sends this process's tasks to it until the fixture ends, then to
    whichever worker they went to before (a test's own worker inside the session's must not
    leave the session's tests sending to a queue nobody reads)."""
    before = (app.conf.broker_url, app.conf.task_default_queue)
    worker.start()
    route_tasks_to(worker.broker_url, worker.queue)
    try:
        yield worker
    finally:
        route_tasks_to(*before)
        worker.stop()
