"""Small helpers for credential tests: device keys, CSRs, device JWTs, a credentialed device."""

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection

from devices import credentials
from devices.models import Device, DeviceCredential
from tests.conftest import make_device


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def csr_pem(common_name: str | None, key=None) -> str:
    key = key or new_key()
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def device_jwt(
    key,
    device_id: str,
    *,
    kid: str | None = None,
    lifetime: int = 300,
    claims: dict | None = None,
) -> str:
    now = int(time.time())
    payload = {"iss": device_id, "iat": now, "exp": now + lifetime, **(claims or {})}
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key, algorithm="ES256", headers=headers)


def hs256_jwt(secret: bytes, payload: dict) -> str:
    """An HS256 token keyed with `secret`: PyJWT refuses to key HMAC with a PEM; attackers don't."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(payload).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@dataclass
class CredentialedDevice:
    """A device with a portal-issued certificate and the private key only the device holds."""

    device: Device
    credential: DeviceCredential
    key: ec.EllipticCurvePrivateKey

    @property
    def device_id(self) -> str:
        return self.device.device_id

    def jwt(self, **options) -> str:
        options.setdefault("kid", self.credential.fingerprint)
        return device_jwt(self.key, self.device_id, **options)


def credentialed(device_id: str | None = None, *, status: str | None = None, **fields):
    device = make_device(device_id, **fields)
    key = new_key()
    credential, _ = credentials.issue_credential(
        device, csr_pem=csr_pem(device.device_id, key), actor="system"
    )
    if status:
        Device.objects.filter(pk=device.pk).update(status=status)
    device.refresh_from_db()
    return CredentialedDevice(device, credential, key)


def database_text() -> str:
    """Every row of every table in the database as text, to look for what must never be stored."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall()]
        chunks = []
        for table in tables:
            cursor.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM \"{table}\" t")  # noqa: S608
            chunks.append(cursor.fetchone()[0])
    # bytea columns (outbox payloads) print as hex: decode them too.
    text = "\n".join(chunks)
    return text + "\n" + _hex_decoded(text)


def _hex_decoded(text: str) -> str:
    return "\n".join(
        bytes.fromhex(match).decode("latin-1")
        for match in re.findall(r"\\x((?:[0-9a-f]{2})+)", text)
    )


@pytest.fixture
def pki_ready(broker):
    """The session broker's CA (settings point at it) and a clean first-connection cache."""
    credentials.forget_settled()
    yield broker
    credentials.forget_settled()


def identity_of(broker, device: CredentialedDevice, key=None, cert_pem: str | None = None):
    """The device's key and certificate as files, ready for tests.mqtt.clients.DeviceClient."""
    from tests.mqtt.clients import write_identity

    return write_identity(
        broker.dir / "clients",
        device.device_id,
        key_pem(key or device.key),
        cert_pem or device.credential.credential_value,
    )


def refused_at_broker(broker, identity, *, within: float = 5.0) -> bool:
    """True once a connection with identity is refused, trying until `within` seconds pass.

    Careful: an accepted attempt takes over the session of a client with the same device id.
    """
    from tests.mqtt.clients import DeviceClient, Refused

    deadline = time.monotonic() + within
    while True:
        client = DeviceClient(broker, identity)
        try:
            client.connect(timeout=2)
        except Refused:
            return True
        client.close()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
