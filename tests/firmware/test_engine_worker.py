"""The engine's tick runs on a real Celery worker (the beat task firmware.tasks.tick)."""

import pytest
from django.utils import timezone

from firmware.models import JobExecution
from firmware.tasks import tick
from fleetportal.models import OutboxMessage
from tests.configuration.test_worker import wait_until
from tests.conftest import make_device, make_group
from tests.firmware.helpers import make_job

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def ticks_done(worker) -> int:
    return sum(
        "firmware.tasks.tick[" in line and "succeeded" in line for line in worker.log().splitlines()
    )


def test_a_worker_tick_queues_the_executions_and_their_notifications(celery_worker):
    group = make_group("worker-site")
    devices = [make_device(f"worker-{n}", group=group) for n in range(3)]
    make_job("worker-job", groups=[group], now=timezone.now())
    tick.delay()
    wait_until(lambda: JobExecution.objects.filter(status="QUEUED").count() == 3, celery_worker)
    notified = set(
        OutboxMessage.objects.filter(topic__endswith="/jobs/notify").values_list(
            "device_id", flat=True
        )
    )
    assert notified == {d.device_id for d in devices}
    # Two more ticks, at once: nothing left to release, nobody is notified twice.
    tick.delay()
    tick.delay()
    wait_until(lambda: ticks_done(celery_worker) == 3, celery_worker)
    assert JobExecution.objects.count() == 3
    assert OutboxMessage.objects.filter(topic__endswith="/jobs/notify").count() == 3
