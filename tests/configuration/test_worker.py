"""A big group's push runs on a real Celery worker, fanned out one task per batch of members."""

import time

import pytest

from shadows.configuration import services as config
from shadows.models import Shadow
from shadows.tasks import render_group_configuration
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def desired_of_all(devices) -> list[dict]:
    shadows = {s.device_id: s for s in Shadow.objects.filter(device__in=devices, name="config")}
    return [shadows[d.pk].desired_state if d.pk in shadows else None for d in devices]


def batch_tasks_done(worker) -> int:
    return sum(
        "render_configuration_batch[" in line and "succeeded" in line
        for line in worker.log().splitlines()
    )


def wait_until(predicate, worker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done; worker log:\n{worker.log()[-3000:]}")
        time.sleep(0.1)


def test_a_change_to_a_big_group_reaches_every_member_through_the_worker(
    celery_worker, operator_api, monkeypatch
):
    monkeypatch.setattr(config, "RENDER_INLINE_LIMIT", 2)  # this process decides: not inline
    site = make_group("big-site")
    devices = [make_device(f"big-{n}", group=site) for n in range(7)]

    response = operator_api.post(
        "/api/v1/config-values/",
        {"group": str(site.pk), "key": "interval", "value": 30},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert desired_of_all(devices) == [None] * 7  # not rendered in the request

    wait_until(lambda: desired_of_all(devices) == [{"interval": 30}] * 7, celery_worker)


def test_the_fan_out_renders_every_batch(celery_worker, monkeypatch):
    monkeypatch.setattr(config, "RENDER_INLINE_LIMIT", 0)
    before = batch_tasks_done(celery_worker)
    site = make_group("batched-site")
    devices = [make_device(f"batch-{n}", group=site) for n in range(7)]
    config.set_value("mode", "eco", group=site, actor="otto")  # queues the default fan-out too

    render_group_configuration.delay(str(site.pk), "otto", batch_size=2)

    wait_until(lambda: desired_of_all(devices) == [{"mode": "eco"}] * 7, celery_worker)
    # 7 members in batches of 2 (4 tasks), and the change's own fan-out: one batch of 500.
    wait_until(lambda: batch_tasks_done(celery_worker) >= before + 5, celery_worker)
    time.sleep(0.5)
    assert batch_tasks_done(celery_worker) == before + 5
