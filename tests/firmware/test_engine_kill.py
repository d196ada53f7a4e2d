"""A Celery worker killed with `kill -9` in the middle of the engine's tick: nothing it did is
kept, and the next tick releases every execution once and notifies every device once."""

import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from firmware.models import JobExecution
from firmware.tasks import tick
from fleetportal.models import OutboxMessage
from tests.conftest import make_device, make_group
from tests.devices.test_bulk_resume import celery  # noqa: F401  (the per-test worker fixture)
from tests.firmware.helpers import make_job

pytestmark = [
    pytest.mark.usefixtures("identity_env"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def dsn() -> str:
    settings = connection.settings_dict
    return f"host={settings['HOST'] or '127.0.0.1'} port={settings['PORT'] or 5432} " + (
        f"dbname={settings['NAME']} user={settings['USER'] or 'postgres'}"
    )


def wait_for(condition, seconds: float, what: str, log=lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the worker said:\n{log()}")
        time.sleep(0.05)


def tick_waits_on_the_outbox(blocker: psycopg.Connection) -> bool:
    """The worker's tick has written its executions and now waits for the outbox table (pg_locks
    is live; pg_stat_activity would be a snapshot inside the blocker's transaction)."""
    row = blocker.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted "
        "AND relation = 'fleetportal_outboxmessage'::regclass"
    ).fetchone()
    return row[0] > 0


def test_a_worker_killed_mid_tick_leaves_nothing_and_the_next_tick_notifies_each_device_once(
    celery,  # noqa: F811
):
    group = make_group("kill-site")
    devices = [make_device(f"kill-{n}", group=group) for n in range(5)]
    make_job("kill-job", groups=[group], now=timezone.now())
    worker = celery("worker", "-P", "solo", ready=b"ready.")

    # Hold the outbox table: the tick gets as far as its execution rows, then waits.
    with psycopg.connect(dsn(), autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE fleetportal_outboxmessage IN ACCESS EXCLUSIVE MODE")
        tick.apply_async(queue=worker.queue)
        wait_for(
            lambda: tick_waits_on_the_outbox(blocker),
            30,
            "the tick to reach the outbox",
            log=lambda: worker.log()[-2000:],
        )
        worker.kill()
        blocker.execute("ROLLBACK")

    assert JobExecution.objects.count() == 0  # the killed tick's writes died with it
    assert OutboxMessage.objects.count() == 0

    celery("worker", "-P", "solo", ready=b"ready.")
    tick.delay()
    wait_for(lambda: JobExecution.objects.count() == len(devices), 30, "the next tick")
    time.sleep(0.5)  # anything a second release would add
    notified = list(
        OutboxMessage.objects.filter(topic__endswith="/jobs/notify").values_list(
            "device_id", flat=True
        )
    )
    assert sorted(notified) == sorted(d.device_id for d in devices)
    assert JobExecution.objects.count() == len(devices)
