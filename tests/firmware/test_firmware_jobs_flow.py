"""A firmware job from start to finish across the device protocol, the engine and the downloads:
the device gets a download URL signed for it when it takes the job, and a run the engine ends
(timeout, force-cancel) puts the device back to active with the failure on its timeline."""

from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import DeviceEvent
from firmware import downloads, engine, jobs
from firmware.models import JobExecution
from firmware.protocol import service
from tests.conftest import make_device
from tests.firmware.helpers import at, make_job, make_version

pytestmark = pytest.mark.django_db


def uploaded_version():
    """A version the portal stores itself (no file_url), so downloads are the portal's."""
    return make_version(file_url="", artifact="firmware/sensor/x/fw.bin")


def take_next(device) -> dict:
    answer = service.start_next(device.device_id, orjson.dumps({}), now=timezone.now())
    return answer["execution"]


def test_a_device_taking_a_firmware_job_gets_a_url_signed_for_it(settings):
    settings.PUBLIC_URL = "https://portal.example.com"
    device = make_device("fw-url-1", device_type="sensor", status=DeviceStatus.ACTIVE)
    version = uploaded_version()
    job = make_job(
        "fw-url", devices=[device], firmware=str(version.pk), document=None, now=timezone.now()
    )
    engine.tick(timezone.now())

    execution = take_next(device)

    url = execution["jobDocument"]["firmware"]["url"]
    assert url == execution["jobDocument"]["afr_ota"]["files"][0]["update_data_url"]
    parts = urlsplit(url)
    assert parts.netloc == "portal.example.com"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["device"] == "fw-url-1"
    downloads.check_signed(parts.path, query)  # a valid signature for this path and device
    # The job keeps the permanent (JWT) address; only what is delivered is signed.
    assert "signature=" not in job.document["firmware"]["url"]


def test_a_firmware_run_the_engine_times_out_puts_the_device_back_to_active():
    device = make_device("fw-timeout-1", device_type="sensor", status=DeviceStatus.ACTIVE)
    version = make_version()
    job = make_job(
        "fw-timeout",
        devices=[device],
        firmware=str(version.pk),
        document=None,
        timeout={"in_progress_timeout_in_minutes": 5},
        now=at(),
    )
    engine.tick(at())
    service.start_next(device.device_id, orjson.dumps({}), now=at(10))
    device.refresh_from_db()
    assert device.status == DeviceStatus.MAINTENANCE

    report = engine.tick(at(11, minutes=5))

    assert report.timed_out == 1
    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE
    failed = DeviceEvent.objects.get(device=device, event_type="firmware_update_failed")
    assert failed.event_data["status"] == "TIMED_OUT"
    assert failed.actor == "system"
    assert JobExecution.objects.get(job=job).status == "TIMED_OUT"


def test_force_cancelling_a_running_firmware_job_puts_the_device_back_to_active():
    device = make_device("fw-cancel-1", device_type="sensor", status=DeviceStatus.ACTIVE)
    job = make_job(
        "fw-cancel", devices=[device], firmware=str(make_version().pk), document=None, now=at()
    )
    engine.tick(at())
    service.start_next(device.device_id, orjson.dumps({}), now=at(10))

    jobs.cancel_job(job, force=True, actor="otto")

    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE
    failed = DeviceEvent.objects.get(device=device, event_type="firmware_update_failed")
    assert (failed.event_data["status"], failed.actor) == ("CANCELED", "otto")
