"""Helpers for the firmware catalog tests: a signing key and an artifact storage of the test's
own, a device of the type, and uploads."""

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from firmware import catalog, signing
from tests.conftest import make_device


@pytest.fixture
def firmware_env(settings, tmp_path):
    """A fresh signing key and a storage directory for this test only."""
    settings.FIRMWARE_SIGNING_KEY = tmp_path / "keys" / "firmware-signing.key"
    settings.FIRMWARE_SIGNING_KEY_PASSPHRASE = ""
    settings.STORAGES = {
        **settings.STORAGES,
        "firmware": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    signing.create_key(settings.FIRMWARE_SIGNING_KEY)
    return tmp_path / "artifacts"


def stored_files() -> list[str]:
    """Every file in the test's artifact storage."""
    directory = Path(settings.STORAGES["firmware"]["OPTIONS"]["location"])
    if not directory.exists():
        return []
    return sorted(
        os.path.relpath(os.path.join(root, name), directory)
        for root, _, names in os.walk(directory)
        for name in names
    )


def image(size: int = 300_000, seed: bytes = b"fw") -> bytes:
    """Deterministic, non-repeating bytes (so a byte out of place changes the SHA-256)."""
    out, counter = bytearray(), 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def upload(data: bytes, name: str = "firmware.bin") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def add(version: str, data: bytes | None = None, *, device_type: str = "sensor", **fields):
    """Catalog `version` of device_type (a device of that type is registered first)."""
    if not catalog.Device.objects.filter(device_type=device_type).exists():
        make_device(device_type=device_type)
    artifact = catalog.Artifact(
        file=upload(data if data is not None else image(seed=version.encode())),
        checksum=fields.pop("checksum", ""),
    )
    return catalog.add_version(
        device_type=device_type, version=version, artifact=artifact, actor="ada", **fields
    )
