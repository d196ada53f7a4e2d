"""Device-side MQTT clients for tests: certificates on disk and a paho client with a queue.

Tests play the device here, so they use paho directly (the app itself reaches paho only through
fleetportal.bridge.transport).
"""

import itertools
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from devices import pki
from devices.pki.authority import leaf_builder
from devices.pki.base import certificate_pem, new_key, now, private_key_pem

_files = itertools.count(1)


class Refused(AssertionError):
    """The broker did not accept the connection (TLS or CONNACK)."""


@dataclass(frozen=True)
class Identity:
    """A device certificate and key written to files, as a device would hold them."""

    device_id: str
    cert_file: Path
    key_file: Path
    cert_pem: str
    key_pem: str
    serial_number: int
    fingerprint: str


def write_identity(directory: Path, device_id: str, key_pem: str, cert_pem: str) -> Identity:
    from cryptography import x509

    directory.mkdir(parents=True, exist_ok=True)
    n = next(_files)
    cert_file, key_file = directory / f"{n}-{device_id}.pem", directory / f"{n}-{device_id}.key"
    cert_file.write_text(cert_pem)
    key_file.write_text(key_pem)
    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    return Identity(
        device_id,
        cert_file,
        key_file,
        cert_pem,
        key_pem,
        certificate.serial_number,
        certificate.fingerprint(hashes.SHA256()).hex(),
    )


def make_identity(
    broker, device_id: str, *, ca: pki.CertificateAuthority | None = None, days: int = 30
) -> Identity:
    """A certificate with CN device_id from the broker's CA (or `ca`), as the portal issues it."""
    # issue_certificate validates the CN as a device_id; claim certificates (CN "claim.<name>")
    # and other deliberately odd names are signed directly.
    key = new_key()
    certificate = (
        leaf_builder(
            ca or broker.ca, key.public_key(), device_id, now() - timedelta(minutes=1), days
        )
        .add_extension(_client_auth(), critical=False)
        .sign((ca or broker.ca).issuing_key, hashes.SHA256())
    )
    return write_identity(
        broker.dir / "clients", device_id, private_key_pem(key), certificate_pem(certificate)
    )


def make_expired_identity(broker, device_id: str) -> Identity:
    """A certificate from the right CA whose validity ended days ago."""
    key = new_key()
    certificate = (
        leaf_builder(broker.ca, key.public_key(), device_id, now() - timedelta(days=10), 1)
        .add_extension(_client_auth(), critical=False)
        .sign(broker.ca.issuing_key, hashes.SHA256())
    )
    return write_identity(
        broker.dir / "clients", device_id, private_key_pem(key), certificate_pem(certificate)
    )


def _client_auth():
    from cryptography import x509

    return x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes


class DeviceClient:
    """A paho client connected with a device certificate; received messages land in a queue."""

    def __init__(
        self,
        broker,
        identity: Identity,
        *,
        port: int | None = None,
        client_id: str | None = None,
        clean_session: bool = True,
        protocol=mqtt.MQTTv311,
    ):
        self.identity = identity
        self.port = port or broker.device_port
        self.host = broker.host
        self.messages: queue.Queue[Message] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack = None
        kwargs = {"clean_session": clean_session} if protocol != mqtt.MQTTv5 else {}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or identity.device_id,
            protocol=protocol,
            **kwargs,
        )
        context = ssl.create_default_context(cafile=str(broker.chain_file))
        context.load_cert_chain(str(identity.cert_file), str(identity.key_file))
        self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def connect(self, timeout: float = 5.0) -> "DeviceClient":
        """Connect and wait for a successful CONNACK, or raise Refused."""
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise Refused(f"TLS refused: {exc}") from exc
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not (self.connected.is_set() or self.disconnected.is_set()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if not self.connected.is_set():
            self.close()
            raise Refused(f"no CONNACK (reason {self.connack})")
        return self

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float = 5.0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic_filter, qos)
        assert done.wait(timeout), f"no SUBACK for {topic_filter}"

    def publish(self, topic: str, payload: bytes | str = b"{}", qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(5)

    def expect(self, topic: str | None = None, timeout: float = 5.0) -> Message:
        """The next message (on `topic`, skipping others), or fail after timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if topic is None or message.topic == topic:
                return message
        raise AssertionError(f"no message on {topic or 'any topic'} within {timeout} s")

    def expect_nothing(self, timeout: float = 1.0) -> None:
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {message.topic}: {message.payload[:100]!r}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code
        if reason_code.is_failure:
            self.disconnected.set()
        else:
            self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.disconnected.set()

    def _on_message(self, client, userdata, message):
        self.messages.put(Message(message.topic, message.payload))
