"""The firmware catalog: add a version (an uploaded artifact or a URL), sign its manifest, keep
"latest" right per device type, delete a version no job uses.

The admin, the REST API and the management commands all call these functions. A refused
version leaves nothing behind: no row, and no file in the artifact storage.
"""

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import IO, cast

from django.core.files.base import File
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone
from django.utils.text import get_valid_filename

from devices.models import Device
from firmware import signing
from firmware.models import FirmwareVersion
from fleetportal import versions
from fleetportal.errors import DomainError

STORAGE_ALIAS = "firmware"
CHUNK_BYTES = 1024 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Namespace of the per-device-type advisory lock (pg_advisory_xact_lock(int, int)).
_LOCK_NAMESPACE = "fleetportal.firmware.catalog"


class CatalogRefused(DomainError):
    """A version the catalog will not hold; `field` names the input at fault."""

    def __init__(self, field: str, code: str, message: str):
        super().__init__(message)
        self.field = field
        self.code = code


class VersionInUse(DomainError):
    field = "non_field_errors"
    code = "in_use"
    http_status = 409


class SigningUnavailable(DomainError):
    """No usable signing key: nothing can be added until the operator creates or fixes it."""

    field = "non_field_errors"
    code = "signing_key_unavailable"
    http_status = 503


@dataclass(frozen=True)
class Artifact:
    """What add_version is given to catalog: an uploaded file, or a URL with its size and hash."""

    file: File | None = None
    file_url: str = ""
    file_size: int | None = None
    checksum: str = ""


def artifact_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def add_version(
    *,
    device_type: str,
    version: str,
    artifact: Artifact,
    actor: str,
    security_version: int = 0,
    hardware_versions: Iterable[str] = (),
    release_notes: str = "",
) -> FirmwareVersion:
    """Catalog a firmware version; refusals are CatalogRefused naming the field."""
    checksum = _check_request(device_type, version, artifact)
    try:
        key = signing.current()
    except signing.SigningKeyError as exc:
        raise SigningUnavailable(str(exc)) from exc
    if artifact.file is not None:
        stored_name, sha256, size = _store(artifact.file, device_type, checksum)
    elif artifact.file_size is not None:  # _check_request asks a URL-only version for its size
        stored_name, sha256, size = "", checksum, artifact.file_size
    else:
        raise CatalogRefused("file_size", "required", "Give the file's size in bytes.")
    try:
        return _create(
            FirmwareVersion(
                device_type=device_type,
                version=version,
                version_key=list(versions.version_key(version)),
                artifact=stored_name,
                file_url=artifact.file_url,
                file_size=size,
                checksum=sha256,
                release_notes=release_notes,
                hardware_versions=sorted(set(hardware_versions)),
                security_version=security_version,
                created_by=actor,
            ),
            key,
        )
    except BaseException:
        if stored_name:
            artifact_storage().delete(stored_name)
        raise


def delete_version(firmware: FirmwareVersion) -> None:
    """Delete a version no job uses (VersionInUse otherwise); its file goes after the commit."""
    name = firmware.artifact.name
    with transaction.atomic():
        _lock_device_type(firmware.device_type)
        try:
            firmware.delete()
        except ProtectedError:
            raise VersionInUse(
                f"Firmware {firmware} is the firmware of a job; it cannot be deleted."
            ) from None
        recompute_latest(firmware.device_type)
    if name:
        transaction.on_commit(lambda: artifact_storage().delete(name))


def recompute_latest(device_type: str) -> None:
    """Mark the highest version (by version order, not upload order) as the type's latest.

    Callers hold the device type's lock. Two statements, clearing before setting: the partial
    unique index firmware_one_latest is checked row by row, so one UPDATE flipping both rows
    could meet the new latest before the old one is cleared.
    """
    best = (
        FirmwareVersion.objects.filter(device_type=device_type)
        .order_by("-version_key")
        .values_list("pk", flat=True)
        .first()
    )
    stale = FirmwareVersion.objects.filter(device_type=device_type, is_latest=True)
    if best is not None:
        stale = stale.exclude(pk=best)
    stale.update(is_latest=False)
    if best is not None:
        FirmwareVersion.objects.filter(pk=best, is_latest=False).update(is_latest=True)


def manifest_of(firmware: FirmwareVersion) -> dict:
    """What the portal signs for a version: everything a device must check before flashing."""
    return {
        "device_type": firmware.device_type,
        "version": firmware.version,
        "security_version": firmware.security_version,
        "sha256": firmware.checksum,
        "size": firmware.file_size,
        "hardware_versions": list(firmware.hardware_versions),
        "created": firmware.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def signed_manifest(firmware: FirmwareVersion) -> str:
    """The exact text the signature covers (canonical JSON of the stored manifest)."""
    return signing.canonical_json(firmware.manifest).decode("ascii")


def open_artifact(firmware: FirmwareVersion):
    """The stored artifact, opened for reading (the caller closes it)."""
    return artifact_storage().open(firmware.artifact.name, "rb")


# --- checks --------------------------------------------------------------------------------------


def _check_request(device_type: str, version: str, artifact: Artifact) -> str:
    """Everything that can be refused before a byte is stored; returns the normalised checksum."""
    if not versions.is_version(version):
        raise CatalogRefused(
            "version", "not_a_version", f"{version!r} is not a version; use dotted numbers."
        )
    # "Known" = at least one registered device (any status) has this device type: firmware for a
    # type no device has is a typo far more often than a product not yet registered.
    if not Device.objects.filter(device_type=device_type).exists():
        raise CatalogRefused(
            "device_type",
            "unknown_device_type",
            f"No registered device has device type {device_type!r}.",
        )
    checksum = artifact.checksum.strip().lower()
    if checksum and not SHA256_HEX.fullmatch(checksum):
        raise CatalogRefused("checksum", "invalid", "A checksum is a SHA-256 in 64 hex digits.")
    if (artifact.file is None) == (not artifact.file_url):
        raise CatalogRefused(
            "file", "file_or_url", "Give either an uploaded file or a file_url, not both."
        )
    if artifact.file_url:
        if not checksum:
            raise CatalogRefused("checksum", "required", "A file_url needs its SHA-256.")
        if not artifact.file_size or artifact.file_size < 1:
            raise CatalogRefused("file_size", "required", "A file_url needs its size in bytes.")
    return checksum


def _check_against_catalog(firmware: FirmwareVersion) -> None:
    """Rules that depend on the type's other versions; the caller holds the type's lock."""
    same_type = FirmwareVersion.objects.filter(device_type=firmware.device_type)
    if same_type.filter(version_key=firmware.version_key).exists():
        raise CatalogRefused(
            "version",
            "duplicate",
            f"{firmware.device_type} already has version {firmware.version} "
            "(trailing zero parts do not count: 2.0 is 2).",
        )
    highest = same_type.aggregate(highest=Max("security_version"))["highest"]
    if highest is not None and firmware.security_version < highest:
        raise CatalogRefused(
            "security_version",
            "rollback",
            f"The security version of {firmware.device_type} only grows: it is {highest} now, "
            f"so {firmware.security_version} is refused.",
        )


# --- storing and signing --------------------------------------------------------------------------


class _HashingReader:
    """Reads through to the upload, hashing and counting what passes (one pass, in chunks)."""

    def __init__(self, source):
        self.source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = CHUNK_BYTES) -> bytes:
        data = self.source.read(CHUNK_BYTES if size is None or size < 0 else size)
        self.sha256.update(data)
        self.size += len(data)
        return data


def _store(upload: File, device_type: str, checksum: str) -> tuple[str, str, int]:
    """Stream the upload into the artifact storage; refuse (and remove) an empty or mismatching
    file. Returns (name in storage, SHA-256, size)."""
    upload.seek(0)
    reader = _HashingReader(upload)
    basename = get_valid_filename((upload.name or "firmware.bin").rsplit("/", 1)[-1]) or "firmware"
    folder = get_valid_filename(device_type) or "type"
    name = artifact_storage().save(
        f"{folder}/{uuid.uuid4().hex}/{basename}", File(cast(IO[bytes], reader))
    )
    sha256 = reader.sha256.hexdigest()
    problem = None
    if reader.size == 0:
        problem = CatalogRefused("file", "empty", "The uploaded file is empty.")
    elif checksum and checksum != sha256:
        problem = CatalogRefused(
            "checksum",
            "mismatch",
            f"The uploaded file's SHA-256 is {sha256}, not the checksum given ({checksum}).",
        )
    if problem:
        artifact_storage().delete(name)
        raise problem
    return name, sha256, reader.size


def _create(firmware: FirmwareVersion, key: signing.SigningKey) -> FirmwareVersion:
    with transaction.atomic():
        _lock_device_type(firmware.device_type)
        _check_against_catalog(firmware)
        firmware.created_at = timezone.now().replace(microsecond=0)
        firmware.manifest = manifest_of(firmware)
        firmware.manifest_signature = key.sign(signing.canonical_json(firmware.manifest))
        firmware.signing_key_id = key.key_id
        try:
            with transaction.atomic():
                firmware.save(force_insert=True)
        except IntegrityError:
            # Only "2.0" beside "2" within the lock can get here; the check above names it.
            raise CatalogRefused("version", "duplicate", "This version exists.") from None
        recompute_latest(firmware.device_type)
    firmware.refresh_from_db(fields=["is_latest"])
    return firmware


def _lock_device_type(device_type: str) -> None:
    """Serialise catalog changes of one device type until the transaction ends, so the
    duplicate and anti-rollback checks and "latest" see every committed version."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
            [_LOCK_NAMESPACE, device_type],
        )
