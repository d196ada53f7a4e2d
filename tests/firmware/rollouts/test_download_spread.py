"""A rollout's download cap and bytes served, over real HTTP and real Redis: the (N+1)th
concurrent download waits (503 + Retry-After), a finished or abandoned download frees its slot,
full and ranged downloads are counted into Rollout.bytes_served, plain jobs are untouched."""

import time
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from devices.choices import DeviceStatus
from firmware import downloads
from firmware.models import Job, JobExecution
from firmware.rollouts import spread
from firmware.rollouts.models import Rollout, Wave
from tests.devices.credential_helpers import bearer, credentialed, pki_ready  # noqa: F401
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready", "firmware_env")]

DATA = image(600_000)  # three chunks


@pytest.fixture(autouse=True)
def own_redis_keys(settings):
    # Each test (and each xdist worker, whose rollout pks repeat) counts under its own keys.
    settings.ROLLOUT_REDIS_KEY_PREFIX = f"test:rollouts:{uuid.uuid4().hex}"


@pytest.fixture
def firmware():
    return add("2.0", DATA)


def rollout_of(firmware, *, concurrency: int | None, devices=()) -> Rollout:
    rollout = Rollout.objects.create(
        rollout_id=f"r-{uuid.uuid4().hex[:8]}", firmware=firmware, download_concurrency=concurrency
    )
    job = Job.objects.create(job_id=f"{rollout.rollout_id}-w1", document={}, firmware=firmware)
    Wave.objects.create(rollout=rollout, number=1, selector="count", count=len(devices), job=job)
    for device in devices:
        JobExecution.objects.create(job=job, device=device.device)
    return rollout


def devices(count: int):
    return [credentialed(status=DeviceStatus.ACTIVE) for _ in range(count)]


def fetch(device, firmware, **headers):
    url = f"/device/v1/firmware/{firmware.pk}/artifact"
    return APIClient().get(url, headers=headers, **bearer(device.jwt()))


def drain(response) -> bytes:
    return b"".join(response.streaming_content)  # the test client closes it at the end


def test_beyond_the_cap_a_device_gets_503_with_retry_after_while_the_others_stream(firmware):
    fleet = devices(3)
    rollout_of(firmware, concurrency=2, devices=fleet)
    streaming = [fetch(fleet[0], firmware), fetch(fleet[1], firmware)]
    assert [r.status_code for r in streaming] == [200, 200]

    refused = fetch(fleet[2], firmware)
    assert refused.status_code == 503
    assert refused["Retry-After"] == str(spread.retry_after(fleet[2].device_id))
    assert 15 <= int(refused["Retry-After"]) < 45
    assert refused.json()["code"] == "busy"
    assert drain(streaming[0]) == DATA  # the others stream whole

    assert drain(fetch(fleet[2], firmware)) == DATA  # a finished download freed its slot


def test_retry_after_differs_between_devices_and_holds_for_one(firmware):
    delays = {spread.retry_after(f"dev-{n}") for n in range(20)}
    assert len(delays) > 5
    assert spread.retry_after("dev-1") == spread.retry_after("dev-1")


def test_an_abandoned_download_frees_its_slot_after_the_lease(settings, firmware):
    settings.ROLLOUT_DOWNLOAD_SLOT_SECONDS = 1
    fleet = devices(2)
    rollout_of(firmware, concurrency=1, devices=fleet)
    abandoned = fetch(fleet[0], firmware)  # never read, never closed: a crashed worker
    assert abandoned.status_code == 200
    assert fetch(fleet[1], firmware).status_code == 503
    time.sleep(1.1)
    assert drain(fetch(fleet[1], firmware)) == DATA


def test_full_and_ranged_downloads_are_counted_into_bytes_served(firmware):
    fleet = devices(2)
    rollout = rollout_of(firmware, concurrency=None, devices=fleet)
    assert len(drain(fetch(fleet[0], firmware))) == len(DATA)
    ranged = fetch(fleet[1], firmware, Range="bytes=1000-1999")
    assert ranged.status_code == 206
    assert len(drain(ranged)) == 1000

    spread.flush_bytes_served()
    rollout.refresh_from_db()
    assert rollout.bytes_served == len(DATA) + 1000
    spread.flush_bytes_served()  # nothing new: nothing added twice
    rollout.refresh_from_db()
    assert rollout.bytes_served == len(DATA) + 1000


def test_a_signed_url_of_a_rollout_is_capped_and_counted(firmware):
    fleet = devices(2)
    rollout = rollout_of(firmware, concurrency=1, devices=fleet)
    urls = [downloads.signed_url(firmware, d.device, rollout=rollout) for d in fleet]
    paths = [url.split("://", 1)[1].split("/", 1)[1] for url in urls]
    held = Client().get(f"/{paths[0]}")
    assert held.status_code == 200
    refused = Client().get(f"/{paths[1]}")
    assert refused.status_code == 503
    assert refused["Retry-After"] == str(spread.retry_after(fleet[1].device_id))
    drain(held)
    spread.flush_bytes_served()
    rollout.refresh_from_db()
    assert rollout.bytes_served == len(DATA)


def test_a_signed_url_cannot_be_moved_to_another_rollout(firmware):
    rollout = rollout_of(firmware, concurrency=1)
    other = rollout_of(firmware, concurrency=None)
    url = downloads.signed_url(firmware, rollout=rollout).split("://", 1)[1].split("/", 1)[1]
    moved = "/" + url.replace(f"rollout={rollout.pk}", f"rollout={other.pk}")
    assert Client().get(moved).status_code == 403
    dropped = "/" + url.replace(f"&rollout={rollout.pk}", "")
    assert Client().get(dropped).status_code == 403


def test_plain_jobs_are_neither_capped_nor_counted_and_cost_no_extra_query(firmware):
    # A rollout with a cap of 1 exists for the same firmware; plain jobs' devices ignore it.
    in_rollout = devices(1)
    rollout = rollout_of(firmware, concurrency=1, devices=in_rollout)
    fleet = devices(3)
    job = Job.objects.create(job_id="plain", document={}, firmware=firmware)
    for device in fleet:
        JobExecution.objects.create(job=job, device=device.device)
    with CaptureQueriesContext(connection) as plain:
        streaming = [fetch(device, firmware) for device in fleet]
    assert [r.status_code for r in streaming] == [200, 200, 200]
    for response in streaming:
        drain(response)
    spread.flush_bytes_served()
    rollout.refresh_from_db()
    assert rollout.bytes_served == 0

    with CaptureQueriesContext(connection) as capped:
        drain(fetch(in_rollout[0], firmware))
    # A rollout's download asks no more queries than a plain one (the wave is a LEFT JOIN).
    assert len(capped) == len(plain) // 3


def test_a_plain_signed_url_asks_only_for_the_firmware(firmware, django_assert_num_queries):
    url = downloads.signed_url(firmware).split("://", 1)[1].split("/", 1)[1]
    with django_assert_num_queries(1):
        response = Client().get(f"/{url}")
    assert drain(response) == DATA
