"""What firmware checks before it flashes an image (docs/device-protocol.md §5a, firmware jobs):
the manifest's signature against the key it was built with, that the manifest is for this
device and matches the job, and after the download that the image's SHA-256 is the manifest's.

The signed bytes are the manifest as canonical JSON (sorted keys, no spaces, ASCII only), which
the device rebuilds from the manifest it is sent.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class FirmwareRefused(Exception):
    """The device will not install this image; the message goes into the job's statusDetails."""


@dataclass(frozen=True)
class TrustedKey:
    """The firmware signing key the device was built with (`manage.py firmware_public_key`)."""

    public_key: ec.EllipticCurvePublicKey
    key_id: str

    @classmethod
    def from_pem(cls, pem: str) -> "TrustedKey":
        key = serialization.load_pem_public_key(pem.encode("ascii"))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the firmware signing key is not an ECDSA key")
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(key, hashlib.sha256(der).hexdigest()[:16])


@dataclass(frozen=True)
class Image:
    """A firmware job's image, checked: where to get it and what it must hash to."""

    version: str
    url: str
    size: int
    sha256: str


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def check(
    firmware: Any, key: TrustedKey | None, *, device_type: str, hardware_version: str
) -> Image:
    """The job document's `firmware` block, checked as firmware would before downloading."""
    if not isinstance(firmware, dict):
        raise FirmwareRefused("the job document has no firmware block")
    if key is None:
        raise FirmwareRefused("no firmware signing key is installed on this device")
    manifest, signature = firmware.get("manifest"), firmware.get("signature")
    if not isinstance(manifest, dict) or not isinstance(signature, str) or not signature:
        raise FirmwareRefused("the image is not signed")
    if firmware.get("signing_key_id") != key.key_id:
        raise FirmwareRefused(
            f"signed with key {firmware.get('signing_key_id')!r}, this device trusts {key.key_id}"
        )
    try:
        key.public_key.verify(
            base64.b64decode(signature), canonical_json(manifest), ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        raise FirmwareRefused("the manifest signature does not verify") from None
    if manifest.get("device_type") != device_type:
        raise FirmwareRefused(
            f"the image is for {manifest.get('device_type')!r}, not {device_type}"
        )
    hardware = manifest.get("hardware_versions") or []
    if hardware and hardware_version not in hardware:
        raise FirmwareRefused(f"the image does not support hardware {hardware_version}")
    for name in ("version", "sha256", "size"):
        if firmware.get(name) != manifest.get(name):
            raise FirmwareRefused(f"the job's {name} differs from the signed manifest's")
    url, size = firmware.get("url"), manifest.get("size")
    if not isinstance(url, str) or not isinstance(size, int) or size < 0:
        raise FirmwareRefused("the job document has no usable url and size")
    return Image(str(manifest["version"]), url, size, str(manifest["sha256"]).lower())
