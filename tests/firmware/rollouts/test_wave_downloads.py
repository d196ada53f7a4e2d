"""A wave's devices receive download URLs that name their rollout, so the rollout's download
cap and bytes served apply to what devices actually fetch; the rollouts tick moves the bytes
into Rollout.bytes_served. Plain jobs' URLs do not change."""

import uuid

import pytest
from django.test import Client

from firmware import jobs
from firmware.models import Job, JobExecution
from firmware.rollouts import engine as rollouts
from firmware.rollouts import spread
from tests.conftest import make_device
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401 - fixtures
from tests.firmware.helpers import at
from tests.firmware.rollouts.test_engine import fleet, make_rollout

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("firmware_env")]

DATA = image(600_000)


@pytest.fixture(autouse=True)
def own_redis_keys(settings):
    settings.ROLLOUT_REDIS_KEY_PREFIX = f"test:rollouts:{uuid.uuid4().hex}"


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def delivered_url(execution: JobExecution) -> str:
    execution = JobExecution.objects.select_related("job__firmware", "device").get(pk=execution.pk)
    return jobs.delivered_document(execution)["firmware"]["url"]


def test_a_wave_device_gets_a_capped_and_counted_url_and_the_tick_adds_the_bytes():
    firmware = add("2.0", DATA)
    rollout = make_rollout(fleet(2), [(2, {})], firmware=firmware, download_concurrency=1)
    rollouts.tick(at(0))
    first, second = JobExecution.objects.filter(job__wave__rollout=rollout).order_by("pk")
    urls = [delivered_url(first), delivered_url(second)]
    assert all(f"rollout={rollout.pk}" in url for url in urls)
    held = Client().get(path_of(urls[0]))
    assert held.status_code == 200
    refused = Client().get(path_of(urls[1]))
    assert refused.status_code == 503 and int(refused["Retry-After"]) >= 15
    assert len(b"".join(held.streaming_content)) == len(DATA)
    rollouts.tick(at(5))
    rollout.refresh_from_db()
    assert rollout.bytes_served == len(DATA)
    again = Client().get(path_of(urls[1]))  # the slot is free again
    assert again.status_code == 200 and b"".join(again.streaming_content) == DATA


def test_a_plain_job_url_names_no_rollout():
    firmware = add("2.0", DATA)
    job = Job.objects.create(job_id="plain", document=jobs.firmware_document(firmware),
                             firmware=firmware)  # fmt: skip
    execution = JobExecution.objects.create(job=job, device=make_device())
    url = delivered_url(execution)
    assert "rollout=" not in url and "signature=" in url
    assert Client().get(path_of(url)).status_code == 200
    spread.flush_bytes_served()
    assert not Job.objects.filter(rollout__isnull=False).exists()
