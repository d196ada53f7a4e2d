"""REST for the catalog: upload (multipart) and URL-only registration, refusals naming the
field, the signing key (a signature verifies with it), filters, delete, and the roles."""

import hashlib

import pytest
from django.contrib.admin.models import ADDITION, DELETION, LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile

from firmware import signing
from firmware.models import FirmwareVersion, Job
from tests.conftest import make_device
from tests.firmware.catalog_helpers import add, firmware_env, image, stored_files  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("firmware_env")]

URL = "/api/v1/firmware/"


def upload(api, data: bytes, **fields):
    fields.setdefault("device_type", "sensor")
    fields.setdefault("version", "1.0.0")
    payload = {**fields, "file": SimpleUploadedFile("fw.bin", data)}
    return api.post(URL, payload, format="multipart")


@pytest.fixture(autouse=True)
def sensor_device(db):
    return make_device(device_type="sensor")


def test_an_upload_is_signed_and_verifies_with_the_published_key(admin_api, viewer_api):
    data = image(250_000)
    response = upload(admin_api, data, security_version=2, hardware_versions=["rev-a", "rev-b"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["file_size"] == len(data)
    assert body["checksum"] == hashlib.sha256(data).hexdigest()
    assert body["manifest"]["hardware_versions"] == ["rev-a", "rev-b"]
    assert body["is_latest"] is True
    assert body["created_by"] == "token:ada"
    key = viewer_api.get(f"{URL}signing-key/").json()
    assert body["signing_key_id"] == key["key_id"]
    assert signing.verify(
        key["public_key_pem"], body["signed_manifest"].encode(), body["manifest_signature"]
    )
    entry = LogEntry.objects.get(object_id=body["id"])
    assert (entry.user.username, entry.action_flag) == ("ada", ADDITION)


def test_the_download_url_in_the_answer_serves_the_upload(admin_api, client):
    data = image(10_000)
    body = upload(admin_api, data).json()
    path = body["download_url"].split("testserver", 1)[1]
    assert b"".join(client.get(path).streaming_content) == data


def test_a_checksum_mismatch_is_400_naming_checksum_and_keeps_nothing(admin_api):
    response = upload(admin_api, image(1000), checksum="0" * 64)
    assert response.status_code == 400
    assert "checksum" in response.json() and response.json()["code"] == "mismatch"
    assert not FirmwareVersion.objects.exists()
    assert stored_files() == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"version": "v1"}, "version"),
        ({"device_type": "toaster"}, "device_type"),
        ({"security_version": -1}, "security_version"),
        ({"checksum": "nothex"}, "checksum"),
    ],
)
def test_bad_uploads_are_400_naming_the_field(admin_api, fields, field):
    response = upload(admin_api, image(1000), **fields)
    assert response.status_code == 400
    assert field in response.json()
    assert stored_files() == []


def test_duplicate_and_lower_security_version_are_refused(admin_api):
    assert upload(admin_api, image(100), security_version=3).status_code == 201
    duplicate = upload(admin_api, image(100), security_version=3)
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "duplicate"
    lower = upload(admin_api, image(100), version="1.1", security_version=2)
    assert lower.status_code == 400 and "security_version" in lower.json()


def test_url_only_registration_by_json(admin_api):
    response = admin_api.post(
        URL,
        {
            "device_type": "sensor",
            "version": "4.0",
            "file_url": "https://cdn.example/fw.bin",
            "file_size": 1234,
            "checksum": "ef" * 32,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["download_url"] == "https://cdn.example/fw.bin"
    assert response.json()["manifest"]["size"] == 1234


def test_an_upload_larger_than_the_request_limit_is_accepted(settings, admin_api):
    settings.MAX_REQUEST_BODY_BYTES = 100_000
    response = upload(admin_api, image(300_000))
    assert response.status_code == 201, response.content


def test_an_upload_larger_than_the_firmware_limit_is_413(settings, admin_api):
    settings.FIRMWARE_MAX_UPLOAD_BYTES = 100_000
    assert upload(admin_api, image(300_000)).status_code == 413


def test_the_list_filters_by_device_type_and_latest(viewer_api):
    make_device(device_type="gateway")
    add("1.0"), add("1.1"), add("7.0", device_type="gateway")
    latest = viewer_api.get(URL, {"device_type": "sensor", "is_latest": "true"}).json()
    assert [v["version"] for v in latest["results"]] == ["1.1"]
    every = viewer_api.get(URL, {"device_type": "sensor"}).json()
    assert [v["version"] for v in every["results"]] == ["1.1", "1.0"]


def test_delete_is_refused_while_a_job_uses_the_version(admin_api):
    firmware = add("1.0")
    Job.objects.create(job_id="upgrade", document={"x": 1}, firmware=firmware)
    response = admin_api.delete(f"{URL}{firmware.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert FirmwareVersion.objects.filter(pk=firmware.pk).exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_delete_removes_the_version_and_records_who(admin_api):
    firmware = add("1.0")
    assert admin_api.delete(f"{URL}{firmware.pk}/").status_code == 204
    assert not FirmwareVersion.objects.exists()
    assert LogEntry.objects.get(action_flag=DELETION).user.username == "ada"


def test_viewers_read_but_cannot_upload_or_delete(viewer_api):
    firmware = add("1.0")
    assert viewer_api.get(f"{URL}{firmware.pk}/").status_code == 200
    assert upload(viewer_api, image(100), version="2.0").status_code == 403
    assert viewer_api.delete(f"{URL}{firmware.pk}/").status_code == 403


def test_operators_cannot_manage_the_catalog(operator_api):
    assert upload(operator_api, image(100)).status_code == 403


def test_there_is_no_update(admin_api):
    firmware = add("1.0")
    assert admin_api.patch(f"{URL}{firmware.pk}/", {"version": "9"}).status_code == 405


def test_the_signing_key_without_a_key_is_503(settings, tmp_path, viewer_api):
    settings.FIRMWARE_SIGNING_KEY = tmp_path / "none.key"
    response = viewer_api.get(f"{URL}signing-key/")
    assert response.status_code == 503
    assert "init_firmware_key" in response.json()["non_field_errors"][0]
