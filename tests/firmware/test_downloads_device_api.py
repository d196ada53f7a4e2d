"""Downloads on the HTTP device API: with its JWT a device fetches only the firmware of a job
execution pending on it, with ranges; the signing key is published to devices."""

import hashlib

import pytest
from rest_framework.test import APIClient

from devices.choices import DeviceStatus
from firmware import catalog, signing
from firmware.choices import ExecutionStatus
from firmware.models import Job, JobExecution
from tests.devices.credential_helpers import bearer, credentialed, pki_ready  # noqa: F401
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready", "firmware_env")]

DATA = image(200_000)


def artifact_url(firmware) -> str:
    return f"/device/v1/firmware/{firmware.pk}/artifact"


def fetch(device, firmware, **headers):
    return APIClient().get(artifact_url(firmware), headers=headers, **bearer(device.jwt()))


def job_for(device, firmware, status=ExecutionStatus.QUEUED, job_id="upgrade"):
    job = Job.objects.create(job_id=job_id, document={"operation": "update"}, firmware=firmware)
    JobExecution.objects.create(job=job, device=device.device, status=status)
    return job


@pytest.mark.parametrize("status", [ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS])
def test_a_device_fetches_the_firmware_of_its_pending_job(status):
    device = credentialed(status=DeviceStatus.ACTIVE)
    firmware = add("2.0", DATA)
    job_for(device, firmware, status)
    response = fetch(device, firmware)
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == firmware.checksum
    assert response["ETag"] == f'"{firmware.checksum}"'


def test_a_device_resumes_its_download_with_a_range():
    device = credentialed(status=DeviceStatus.ACTIVE)
    firmware = add("2.0", DATA)
    job_for(device, firmware, ExecutionStatus.IN_PROGRESS)
    head = fetch(device, firmware, Range="bytes=0-99999")
    tail = fetch(device, firmware, Range="bytes=100000-", **{"If-Range": head["ETag"]})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert tail["Content-Range"] == f"bytes 100000-199999/{len(DATA)}"
    joined = b"".join(head.streaming_content) + b"".join(tail.streaming_content)
    assert hashlib.sha256(joined).hexdigest() == firmware.checksum
    assert fetch(device, firmware, Range="bytes=200000-").status_code == 416


def test_another_devices_job_does_not_open_the_firmware():
    device, neighbour = credentialed(), credentialed()
    firmware = add("2.0", DATA)
    job_for(neighbour, firmware)
    response = fetch(device, firmware)
    assert response.status_code == 403
    assert "not the firmware of a job execution pending" in response.json()["detail"]


def test_a_job_of_other_firmware_does_not_open_this_one():
    device = credentialed()
    wanted, other = add("2.0", DATA), add("3.0")
    job_for(device, other)
    assert fetch(device, wanted).status_code == 403


@pytest.mark.parametrize(
    "status", [ExecutionStatus.SUCCEEDED, ExecutionStatus.CANCELED, ExecutionStatus.TIMED_OUT]
)
def test_an_ended_execution_no_longer_opens_the_firmware(status):
    device = credentialed()
    firmware = add("2.0", DATA)
    job_for(device, firmware, status)
    assert fetch(device, firmware).status_code == 403


def test_without_a_jwt_there_is_no_download():
    firmware = add("2.0", DATA)
    assert APIClient().get(artifact_url(firmware)).status_code == 401


def test_an_unknown_version_is_404():
    device = credentialed()
    missing = "00000000-0000-0000-0000-000000000000"
    response = APIClient().get(f"/device/v1/firmware/{missing}/artifact", **bearer(device.jwt()))
    assert response.status_code == 404


def test_a_url_only_version_redirects_to_the_operators_url():
    device = credentialed()
    hosted = catalog.add_version(
        device_type=device.device.device_type,
        version="5",
        artifact=catalog.Artifact(
            file_url="https://cdn.example/fw-5.bin", file_size=10, checksum="cd" * 32
        ),
        actor="ada",
    )
    job_for(device, hosted)
    response = fetch(device, hosted)
    assert response.status_code == 302
    assert response["Location"] == "https://cdn.example/fw-5.bin"


def test_devices_read_the_signing_key_without_credentials():
    response = APIClient().get("/device/v1/firmware/signing-key")
    assert response.status_code == 200
    assert response.json() == signing.public_key_document()
    assert response.json()["key_id"] == signing.current().key_id
