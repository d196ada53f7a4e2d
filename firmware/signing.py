"""The portal's firmware signing key: ECDSA P-256, kept like the CA key.

One PEM file outside the source tree (settings.FIRMWARE_SIGNING_KEY, under the var directory by
default), mode 0600 in a 0700 directory, encrypted when FIRMWARE_SIGNING_KEY_PASSPHRASE is set.
`manage.py init_firmware_key` creates it once (and `make run` calls it); nothing overwrites it,
because every device that pinned its key id would then refuse every new manifest.

Devices pin the key by its id: the first 16 hex digits of the SHA-256 of the public key's DER
(SubjectPublicKeyInfo). What is signed is canonical JSON (`canonical_json`): sorted keys, no
spaces, ASCII only, so a device rebuilds the same bytes from the manifest it is sent.
"""

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from devices.pki.base import new_key, private_key_pem
from fleetportal.files import fsync_directory

KEY_ID_LENGTH = 16
ALGORITHM = "ECDSA P-256 SHA-256"


class SigningKeyError(Exception):
    """The signing key is missing, unreadable or of the wrong kind: the operator's problem."""


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key_pem(self) -> str:
        return public_pem(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())

    def sign(self, data: bytes) -> str:
        """The base64 of the DER-encoded ECDSA signature over data."""
        signature = self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode("ascii")


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def public_pem(public_key: ec.EllipticCurvePublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:KEY_ID_LENGTH]


def verify(public_key_pem: str, data: bytes, signature_b64: str) -> bool:
    """Whether signature_b64 is the key's signature over data (what a device checks)."""
    public_key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    try:
        public_key.verify(base64.b64decode(signature_b64), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_document() -> dict:
    """What the REST and device APIs publish, so devices can pin the key."""
    key = current()
    return {"key_id": key.key_id, "algorithm": ALGORITHM, "public_key_pem": key.public_key_pem}


def configured_path() -> Path:
    return Path(settings.FIRMWARE_SIGNING_KEY)


def configured_passphrase() -> bytes | None:
    passphrase = settings.FIRMWARE_SIGNING_KEY_PASSPHRASE
    return passphrase.encode("utf-8") if passphrase else None


def create_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    """Write a new key to path (0600; its directory 0700 if new); never over an existing file."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
    key = new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} exists; a signing key is never overwritten.") from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(private_key_pem(key, passphrase).encode("ascii"))
        f.flush()
        os.fsync(f.fileno())
    fsync_directory(path.parent)
    return SigningKey(key)


def load_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise SigningKeyError(
            f"No firmware signing key at {path}; run `manage.py init_firmware_key`."
        ) from None
    return _load(path, passphrase, stamp)


def current() -> SigningKey:
    """The configured key (decrypting it is slow, so it is cached until the file changes)."""
    return load_key(configured_path(), configured_passphrase())


@lru_cache(maxsize=4)
def _load(path: Path, passphrase: bytes | None, stamp: int) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (TypeError, ValueError) as exc:
        # TypeError: a passphrase given for a plain key or missing for an encrypted one.
        raise SigningKeyError(
            f"{path} cannot be read: {exc} (check FLEETPORTAL_FIRMWARE_SIGNING_KEY_PASSPHRASE)."
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SigningKeyError(f"{path} is not an ECDSA P-256 key.")
    return SigningKey(key)
