"""The catalog's admin pages: upload through the service (refusals on their field, nothing
kept), the latest marked, the manifest and signature shown read-only, history with its actor."""

import hashlib

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from firmware.models import FirmwareVersion, Job
from tests.conftest import make_device
from tests.firmware.catalog_helpers import add, firmware_env, image, stored_files  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("firmware_env")]

ADD = reverse("admin:firmware_firmwareversion_add")
LIST = reverse("admin:firmware_firmwareversion_changelist")


def change_url(firmware) -> str:
    return reverse("admin:firmware_firmwareversion_change", args=[firmware.pk])


@pytest.fixture
def admin_client_for(client, fleet_admin):
    client.force_login(fleet_admin)
    make_device(device_type="sensor")
    return client


def post_upload(client, data: bytes, **fields):
    form = {
        "device_type": "sensor",
        "version": "1.0.0",
        "security_version": "0",
        "hardware_versions": "",
        "release_notes": "",
        "file_url": "",
        "file_size": "",
        "checksum": "",
        "file": SimpleUploadedFile("image.bin", data),
        **fields,
    }
    return client.post(ADD, form)


def test_the_upload_form_has_a_progress_bar(admin_client_for):
    page = admin_client_for.get(ADD)
    assert page.status_code == 200
    assert b"firmware/upload_progress.js" in page.content


def test_an_admin_upload_is_stored_signed_and_recorded(admin_client_for):
    data = image(40_000)
    response = post_upload(admin_client_for, data, hardware_versions="rev-a,rev-b")
    assert response.status_code == 302, response.context["adminform"].form.errors
    firmware = FirmwareVersion.objects.get()
    assert firmware.checksum == hashlib.sha256(data).hexdigest()
    assert firmware.hardware_versions == ["rev-a", "rev-b"]
    assert firmware.manifest_signature and firmware.created_by == "ada"
    entry = LogEntry.objects.get(object_id=str(firmware.pk))
    assert (entry.user.username, entry.action_flag) == ("ada", ADDITION)


def test_a_mismatching_checksum_is_shown_on_its_field_and_nothing_is_kept(admin_client_for):
    response = post_upload(admin_client_for, image(1000), checksum="1" * 64)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not the checksum given" in errors["checksum"][0]
    assert not FirmwareVersion.objects.exists()
    assert stored_files() == []


def test_a_url_only_version_is_registered_from_the_form(admin_client_for):
    form = {
        "device_type": "sensor",
        "version": "2.0",
        "security_version": "1",
        "hardware_versions": "",
        "release_notes": "",
        "file_url": "https://cdn.example/fw.bin",
        "file_size": "2048",
        "checksum": "ab" * 32,
    }
    assert admin_client_for.post(ADD, form).status_code == 302
    assert FirmwareVersion.objects.get().file_url == "https://cdn.example/fw.bin"


def test_the_list_marks_the_latest_per_device_type(admin_client_for):
    add("1.0"), add("1.10"), add("1.9")
    page = admin_client_for.get(LIST).content.decode()
    assert page.count("<strong>latest</strong>") == 1


def test_the_change_page_shows_the_manifest_and_signature_read_only(admin_client_for):
    firmware = add("1.0")
    page = admin_client_for.get(change_url(firmware)).content.decode()
    assert firmware.manifest_signature in page
    assert firmware.checksum in page
    assert 'name="version"' not in page  # signed fields are not inputs
    assert 'name="release_notes"' in page


def test_only_release_notes_change_and_the_change_is_recorded(admin_client_for):
    firmware = add("1.0")
    response = admin_client_for.post(change_url(firmware), {"release_notes": "Fixes the LED."})
    assert response.status_code == 302
    firmware.refresh_from_db()
    assert firmware.release_notes == "Fixes the LED."
    assert LogEntry.objects.get(action_flag=CHANGE).user.username == "ada"


def test_delete_is_refused_while_a_job_uses_the_version(admin_client_for):
    firmware = add("1.0")
    Job.objects.create(job_id="upgrade", document={"x": 1}, firmware=firmware)
    delete = reverse("admin:firmware_firmwareversion_delete", args=[firmware.pk])
    admin_client_for.post(delete, {"post": "yes"})
    assert FirmwareVersion.objects.filter(pk=firmware.pk).exists()


def test_viewers_cannot_upload(client, viewer):
    client.force_login(viewer)
    assert client.get(ADD).status_code == 403
    assert client.get(LIST).status_code == 200
