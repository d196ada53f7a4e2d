"""catalog.add_version: size and SHA-256 computed while streaming, the manifest signed, and every
refusal leaving nothing behind (no row, no stored file)."""

import hashlib

import pytest

from firmware import catalog, signing
from firmware.models import FirmwareVersion, Job
from tests.conftest import make_device
from tests.firmware.catalog_helpers import (  # noqa: F401 - firmware_env is a fixture
    add,
    firmware_env,
    image,
    stored_files,
    upload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("firmware_env")]


def refused(field: str, code: str, **kwargs) -> catalog.CatalogRefused:
    with pytest.raises(catalog.CatalogRefused) as caught:
        add(**kwargs)
    assert (caught.value.field, caught.value.code) == (field, code), caught.value.message
    return caught.value


def test_upload_computes_size_and_sha256_and_stores_the_file():
    data = image(3 * 1024 * 1024 + 17)
    firmware = add("1.2.0", data)
    assert firmware.file_size == len(data)
    assert firmware.checksum == hashlib.sha256(data).hexdigest()
    with catalog.open_artifact(firmware) as stored:
        assert stored.read() == data
    assert stored_files() == [firmware.artifact.name]
    assert firmware.created_by == "ada"


def test_the_manifest_is_signed_with_the_portal_key():
    firmware = add("1.2.0", image(1000), hardware_versions=["rev-b", "rev-a"], security_version=3)
    assert firmware.manifest == {
        "device_type": "sensor",
        "version": "1.2.0",
        "security_version": 3,
        "sha256": firmware.checksum,
        "size": 1000,
        "hardware_versions": ["rev-a", "rev-b"],
        "created": firmware.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    key = signing.current()
    assert firmware.signing_key_id == key.key_id
    stored = FirmwareVersion.objects.get(pk=firmware.pk)
    signed = catalog.signed_manifest(stored).encode()
    assert signing.verify(key.public_key_pem, signed, stored.manifest_signature)


def test_a_checksum_the_operator_gave_must_match():
    data = image(5000)
    add("1.0.0", data, checksum=hashlib.sha256(data).hexdigest().upper())
    error = refused("checksum", "mismatch", version="1.1.0", checksum="0" * 64)
    assert "not the checksum given" in error.message
    assert FirmwareVersion.objects.filter(version="1.1.0").count() == 0
    assert len(stored_files()) == 1  # only 1.0.0's


def test_an_empty_file_is_refused_and_not_kept():
    refused("file", "empty", version="1.0.0", data=b"")
    assert stored_files() == []
    assert not FirmwareVersion.objects.exists()


def test_a_non_version_is_refused():
    refused("version", "not_a_version", version="1.0-beta")


def test_an_unknown_device_type_is_refused():
    make_device(device_type="sensor")
    with pytest.raises(catalog.CatalogRefused) as caught:
        catalog.add_version(
            device_type="toaster",
            version="1.0",
            artifact=catalog.Artifact(file=upload(b"x")),
            actor="ada",
        )
    assert caught.value.field == "device_type"


def test_a_duplicate_version_of_the_type_is_refused_even_spelled_with_trailing_zeros():
    add("2.0.0")
    refused("version", "duplicate", version="2.0.0")
    refused("version", "duplicate", version="2")
    assert len(stored_files()) == 1


def test_the_same_version_of_another_device_type_is_fine():
    add("2.0.0")
    assert add("2.0.0", device_type="gateway").device_type == "gateway"


def test_the_security_version_never_goes_down():
    add("1.0.0", security_version=5)
    error = refused("security_version", "rollback", version="1.1.0", security_version=4)
    assert "it is 5 now" in error.message
    assert add("1.1.0", security_version=5).security_version == 5
    assert add("1.2.0", security_version=6).security_version == 6
    assert len(stored_files()) == 3


def test_url_only_registration_signs_the_operators_size_and_checksum():
    make_device(device_type="sensor")
    checksum = "ab" * 32
    firmware = catalog.add_version(
        device_type="sensor",
        version="3.0",
        artifact=catalog.Artifact(
            file_url="https://cdn.example/fw-3.0.bin", file_size=123456, checksum=checksum
        ),
        actor="ada",
    )
    assert (firmware.file_size, firmware.checksum, firmware.artifact.name) == (123456, checksum, "")
    assert firmware.manifest["sha256"] == checksum and firmware.manifest["size"] == 123456
    key = signing.current()
    assert signing.verify(
        key.public_key_pem, catalog.signed_manifest(firmware).encode(), firmware.manifest_signature
    )
    assert stored_files() == []


@pytest.mark.parametrize(
    ("artifact", "field"),
    [
        ({"file_url": "https://cdn.example/a.bin", "file_size": 10}, "checksum"),
        ({"file_url": "https://cdn.example/a.bin", "checksum": "ab" * 32}, "file_size"),
        ({"file_url": "https://cdn.example/a.bin", "file_size": 10, "checksum": "xyz"}, "checksum"),
        ({}, "file"),
        ({"file": upload(b"x"), "file_url": "https://cdn.example/a.bin"}, "file"),
    ],
)
def test_url_only_registration_needs_size_and_checksum(artifact, field):
    make_device(device_type="sensor")
    with pytest.raises(catalog.CatalogRefused) as caught:
        catalog.add_version(
            device_type="sensor", version="1", artifact=catalog.Artifact(**artifact), actor="ada"
        )
    assert caught.value.field == field


def test_latest_is_the_highest_version_not_the_last_upload():
    add("1.10.0")
    add("1.9.3")
    add("2.0.0", device_type="gateway")
    latest = dict(
        FirmwareVersion.objects.filter(is_latest=True).values_list("device_type", "version")
    )
    assert latest == {"sensor": "1.10.0", "gateway": "2.0.0"}
    add("1.11")
    assert FirmwareVersion.objects.get(device_type="sensor", is_latest=True).version == "1.11"


def test_deleting_the_latest_hands_latest_to_the_next_highest_and_removes_the_file(
    django_capture_on_commit_callbacks,
):
    old, new = add("1.0"), add("1.1")
    with django_capture_on_commit_callbacks(execute=True):
        catalog.delete_version(new)
    old.refresh_from_db()
    assert old.is_latest
    assert stored_files() == [old.artifact.name]


def test_a_version_a_job_uses_cannot_be_deleted():
    firmware = add("1.0")
    Job.objects.create(job_id="upgrade", document={"x": 1}, firmware=firmware)
    with pytest.raises(catalog.VersionInUse):
        catalog.delete_version(firmware)
    assert FirmwareVersion.objects.filter(pk=firmware.pk).exists()


def test_without_a_signing_key_nothing_is_added(settings, tmp_path):
    settings.FIRMWARE_SIGNING_KEY = tmp_path / "missing.key"
    with pytest.raises(catalog.SigningUnavailable, match="init_firmware_key"):
        add("1.0")
    assert stored_files() == []
