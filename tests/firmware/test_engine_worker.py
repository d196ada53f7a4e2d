"""The engine's tick runs on a real Celery worker (the beat task firmware.tasks.tick), and says
on the console only what changed."""

import logging

import pytest
from django.utils import timezone

from devices.tasks import expire_pending_claims
from firmware import engine
from firmware.models import JobExecution
from firmware.tasks import changes, tick
from fleetportal import log_filters
from fleetportal.models import OutboxMessage
from tests.configuration.test_worker import wait_until
from tests.conftest import make_device, make_group
from tests.firmware.helpers import make_job

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def wait_for_what_was_sent(worker, since: int) -> None:
    """Wait until every task sent so far has run. Idle ticks leave no INFO line to wait for, but
    the worker takes one task at a time, in order (solo pool, prefetch 1): a marker task sent
    last succeeds after them."""
    marker = expire_pending_claims.delay()
    done = f"expire_pending_claims[{marker.id}] succeeded"
    wait_until(lambda: done in worker.log()[since:], worker)


def test_a_worker_tick_queues_the_executions_and_their_notifications(celery_worker):
    group = make_group("worker-site")
    devices = [make_device(f"worker-{n}", group=group) for n in range(3)]
    make_job("worker-job", groups=[group], now=timezone.now())
    since = len(celery_worker.log())
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
    wait_for_what_was_sent(celery_worker, since)
    assert JobExecution.objects.count() == 3
    assert OutboxMessage.objects.filter(topic__endswith="/jobs/notify").count() == 3

    # The console: one line for the tick that released, nothing for the idle ones, and none
    # of Celery's received / succeeded lines about the tick.
    console = celery_worker.log()[since:]
    assert console.count("Jobs engine: released 3 execution(s).") == 1
    assert console.count("Jobs engine:") == 1
    assert "firmware.tasks.tick[" not in console


def test_a_tick_says_what_it_changed_in_one_line():
    report = engine.Report(released=40, timed_out=2, completed=["job-1", "job-2"])
    assert changes(report) == ("released 40 execution(s); timed out 2; completed job-1, job-2")
    assert changes(engine.Report()) == ""


def test_beat_sending_a_quiet_task_is_debug_and_other_tasks_stay_info(caplog):
    log_filters.quiet_periodic_tasks()
    beat = logging.getLogger("celery.beat")
    with caplog.at_level(logging.INFO):
        beat.info("Scheduler: Sending due task %s (%s)", "jobs-tick", "firmware.tasks.tick")
        beat.info("Scheduler: Sending due task %s (%s)", "resign-crl", "devices.tasks.resign_crl")
    assert [r.getMessage() for r in caplog.records] == [
        "Scheduler: Sending due task resign-crl (devices.tasks.resign_crl)"
    ]
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        beat.info("Scheduler: Sending due task %s (%s)", "jobs-tick", "firmware.tasks.tick")
    assert [r.levelname for r in caplog.records] == ["DEBUG"]


def test_a_failing_quiet_task_keeps_its_error(caplog):
    log_filters.quiet_periodic_tasks()
    trace = logging.getLogger("celery.app.trace")
    with caplog.at_level(logging.INFO):
        trace.error(
            "Task %(name)s raised",
            {"name": "firmware.tasks.tick"},
            extra={"data": {"name": "firmware.tasks.tick"}},
        )
    assert [r.levelname for r in caplog.records] == ["ERROR"]
