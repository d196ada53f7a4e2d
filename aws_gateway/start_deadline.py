"""A rollout wave's start deadline for its devices on AWS, enforced by the portal.

AWS IoT Jobs has no deadline for an execution to start (its timeoutConfig runs from
IN_PROGRESS), so the jobs reconcile (job_mirror.reconcile) ends a silent one itself: an
execution still QUEUED start_deadline_minutes after its AWS job was created — or, for a wave
with a maintenance window, after the window first opened from then (AWS delivers nothing
before) — is cancelled on AWS (CancelJobExecution, force false), then ends in the portal as a
broker device's does (firmware.engine.cancel_not_started): CANCELED, statusDetails reason
not_started, followed up — so the rollout counts it NOT_STARTED.

On AWS's side: an execution that started meanwhile (InvalidStateTransitionException: force
false never cancels a running one) is left for the mirror to move; one AWS does not have
(ResourceNotFoundException) ends in the portal all the same; AWS away or throttling stops the
round (the reconcile's task records it on the jobs link) and the next reconcile tries again.
"""

import logging
from datetime import datetime, timedelta

from django.db.models import F

from aws_gateway import client, errors
from aws_gateway.models import AwsJob
from firmware.choices import ExecutionStatus
from firmware.engine import NOT_STARTED
from firmware.models import JobExecution
from firmware.rollouts import windows

log = logging.getLogger(__name__)

NOT_STARTED_DETAILS = {"reason": NOT_STARTED}
_STARTED_ON_AWS = "InvalidStateTransitionException"
_NOT_ON_AWS = "ResourceNotFoundException"


def started_by(row: AwsJob) -> datetime | None:
    """When AWS may first deliver the job: its creation, or its window's first opening after."""
    job, created = row.job, row.created_on_aws_at
    if created is None or not job.window_cron:
        return created
    return windows.next_opening(job.window_cron, job.window_duration_minutes or 0, "UTC", created)


def cancel_not_started(row: AwsJob, now: datetime) -> int:
    """Cancel the AWS job's executions past the wave's start deadline; returns how many ended.
    AWS errors other than the execution's own state propagate (the reconcile records them)."""
    job = row.job
    start = started_by(row)
    if not job.start_deadline_minutes or row.cancel_requested_at or start is None:
        return 0
    deadline = now - timedelta(minutes=job.start_deadline_minutes)
    if start > deadline:
        return 0
    silent = JobExecution.objects.filter(
        job=job,
        device__device_id__in=row.things,
        status=ExecutionStatus.QUEUED,
        superseded=False,
        queued_at__lte=deadline,  # an attempt AWS retried counts from when it was queued
    ).values_list("pk", "device__device_id")
    ended = 0
    for pk, thing in silent:
        if _canceled_on_aws(row.aws_job_id, thing):
            # At once, before the next call: the cancellation's own event (rule → SQS) may be
            # mirrored any moment now, and it carries the same reason (sent with the cancel).
            ended += _end_not_started(pk, now)
    return ended


def _end_not_started(pk, now: datetime) -> int:
    # Conditional on QUEUED: a state the queue's consumer mirrored meanwhile stands.
    return JobExecution.objects.filter(pk=pk, status=ExecutionStatus.QUEUED).update(
        status=ExecutionStatus.CANCELED,
        status_details=NOT_STARTED_DETAILS,
        version_number=F("version_number") + 1,
        last_updated_at=now,
        followed_up_at=now,
    )


def _canceled_on_aws(aws_job_id: str, thing: str) -> bool:
    try:
        client.client("iot").cancel_job_execution(
            jobId=aws_job_id, thingName=thing, force=False, statusDetails=NOT_STARTED_DETAILS
        )
    except errors.AWS_ERRORS as error:
        code = errors.code(error)
        if code == _NOT_ON_AWS:
            return True
        if code == _STARTED_ON_AWS or errors.is_permanent(error):
            log.info("%s on %s not cancelled: %s", aws_job_id, thing, errors.describe(error))
            return False
        raise
    return True
