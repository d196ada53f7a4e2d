"""A bulk job survives `kill -9` of its worker: it resumes within seconds, every row once."""

import time

import pytest
from django.db import connection

from devices import bulk
from devices.choices import BulkJobStatus
from devices.models import BulkProvisioningJob, Device, DeviceEvent
from fleetportal.celery import app
from tests.devices.claim_helpers import CeleryWorker, make_csr, route_tasks_to

pytestmark = [
    pytest.mark.usefixtures("identity_env"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROWS = 2_000
# Short, so the test need not wait the default 15 s; the rule is the same.
TIMING = {"FLEETPORTAL_JOB_STALL_SECONDS": "2", "FLEETPORTAL_JOB_SWEEP_SECONDS": "1"}


@pytest.fixture
def celery(pki_dir, tmp_path, worker_id):
    """Start workers and a beat on one queue of their own; everything is stopped afterwards."""
    started = []
    queue = None
    # The session's celery_worker may already route this process's tasks: restore that after.
    before = (app.conf.broker_url, app.conf.task_default_queue)

    def start(*program: str, ready: bytes) -> CeleryWorker:
        nonlocal queue
        process = CeleryWorker(
            connection.settings_dict["NAME"],
            pki_dir / "ca",
            tmp_path / f"{program[0]}-{len(started)}.log",
            worker_id,
            queue=queue,
            program=program,
            FLEETPORTAL_BROKER_DIR=str(tmp_path / "broker"),
            **TIMING,
        )
        queue = process.queue
        process.start(ready=ready)
        started.append(process)
        route_tasks_to(process.broker_url, process.queue)
        return process

    yield start
    route_tasks_to(*before)
    for process in started:
        process.stop()


def slow_csv() -> str:
    # With a CSR each row costs a signature check and a certificate: the job takes seconds.
    rows = [f'bulk-{n:05d},sensor,"{make_csr(f"bulk-{n:05d}")[1].strip()}"' for n in range(ROWS)]
    return "device_id,device_type,csr\n" + "\n".join(rows) + "\n"


def wait_until(condition, timeout: float, message: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(message)
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_job_whose_worker_is_killed_resumes_within_seconds_and_registers_every_row_once(
    celery,
):
    first = celery("worker", "-P", "solo", ready=b"ready.")
    celery("beat", "-s", str(first.log_file.parent / "beat-schedule"), ready=b"Starting")
    job = bulk.start_bulk_job(slow_csv(), actor="ada")

    def progress() -> int:
        return BulkProvisioningJob.objects.values_list("processed_rows", flat=True).get(pk=job.pk)

    wait_until(lambda: progress() >= bulk.PROGRESS_EVERY, 60, first.log()[-3000:])
    first.kill()
    stranded = progress()
    assert stranded < ROWS, "the job finished before the worker was killed"

    second = celery("worker", "-P", "solo", ready=b"ready.")
    took = wait_until(
        lambda: BulkProvisioningJob.objects.get(pk=job.pk).status == BulkJobStatus.FINISHED,
        30,
        f"stalled at {progress()} rows; worker log:\n{second.log()[-3000:]}",
    )

    job.refresh_from_db()
    assert took < 30
    assert (job.processed_rows, job.succeeded_rows, job.row_errors) == (ROWS, ROWS, [])
    assert len(job.device_ids) == len(set(job.device_ids)) == ROWS
    assert Device.objects.filter(device_id__startswith="bulk-").count() == ROWS
    registered = DeviceEvent.objects.filter(device__device_id__startswith="bulk-")
    assert registered.filter(event_type="registered").count() == ROWS
    assert "Resumed 1 stalled bulk provisioning job" in second.log()


@pytest.mark.django_db
def test_a_stalled_job_is_claimed_by_one_sweep_only(settings):
    from datetime import timedelta

    from django.utils import timezone

    from fleetportal import resumable

    settings.CELERY_TASK_ALWAYS_EAGER = True  # the re-queued task runs here, and finishes the job
    quiet = timezone.now() - timedelta(seconds=settings.JOB_STALL_SECONDS + 1)
    job = bulk.start_bulk_job("device_id,device_type\nsweep-1,sensor\n", actor="ada")
    BulkProvisioningJob.objects.filter(pk=job.pk).update(
        status=BulkJobStatus.RUNNING, heartbeat_at=quiet
    )
    fresh = bulk.start_bulk_job("device_id,device_type\nsweep-2,sensor\n", actor="ada")
    BulkProvisioningJob.objects.filter(pk=fresh.pk).update(
        status=BulkJobStatus.RUNNING, heartbeat_at=timezone.now()
    )

    assert resumable.resume_stalled()["bulk provisioning"] == 1
    assert resumable.resume_stalled()["bulk provisioning"] == 0
    job.refresh_from_db()
    assert job.status == BulkJobStatus.FINISHED and job.device_ids == ["sweep-1"]
