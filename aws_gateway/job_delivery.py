"""Portal jobs for devices on AWS, handed to AWS IoT Jobs.

The jobs engine hands a job's targets on AWS over at its first release step
(firmware.delegation): `delegate` records an AwsJob — the AWS job id, the things, the document
they get — in the engine's transaction, and queues the sender after the commit; beat retries
what is due every AWS_SEND_SECONDS. So a job with devices on both gateways is one portal job:
its broker devices paced by the portal's engine, its AWS devices by one AWS job (a continuous
job's later joiners by another, `<job id>-late-<n>`), all of them executions of the one job.

`create_due` calls CreateJob (SNAPSHOT, the things' ARNs, the document, the job's rollout,
abort, timeout and retry configs in AWS's words, and its maintenance windows as
schedulingConfig.maintenanceWindows); an AWS job that exists already (a crash after CreateJob,
before the commit) counts as created. AWS refusing the job itself fails its executions with the
reason, so the job's counts and a rollout's gates see it.

Maintenance windows: a plain job's (scheduling_config, UTC like the engine reads them) or a
rollout wave's window (window_cron, window_duration_minutes). AWS evaluates them in UTC, so a
wave's window must be in UTC for its AWS devices: the rollout is refused otherwise when it is
created or started (firmware.delegation.window_refused); one that got past that (a device
moved to AWS while its wave ran) is failed here with the reason rather than sent unwindowed.

The document: the portal's job document; a firmware job's artifact as a presigned S3 URL when
AWS_ARTIFACT_BUCKET is set (the artifact is uploaded there on first use), else the portal's own
signed download URL for any holder — both valid AWS_ARTIFACT_URL_SECONDS: AWS delivers one
document to every device of the job, so it cannot be signed per device.
"""

import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aws_gateway import client, errors, fleet, sending, status
from aws_gateway.choices import LinkPart
from aws_gateway.models import AwsJob
from firmware import catalog, downloads, jobs
from firmware.choices import ExecutionStatus
from firmware.delegation import Delegated
from firmware.models import FirmwareVersion, Job, JobExecution, JobTarget

log = logging.getLogger(__name__)

CREATED, CANCELED, REFUSED = "created", "canceled", "refused"
RETRY = sending.RETRY
_CONFIGS = {  # the portal's config fields -> CreateJob's parameters
    "rollout_config": "jobExecutionsRolloutConfig",
    "abort_config": "abortConfig",
    "timeout_config": "timeoutConfig",
    "retry_config": "jobExecutionsRetryConfig",
}
UTC_ZONES = frozenset({"UTC", "Etc/UTC"})  # AWS IoT Jobs reads maintenance windows in UTC


class WindowNotInUtc(Exception):
    """A wave's window is in a zone other than UTC for some of its devices on AWS."""


def delegate(job: Job, delegated: list[Delegated], now: datetime) -> None:
    """firmware.delegation door: record the AWS job for these devices; sent after the commit."""
    earlier = AwsJob.objects.filter(job=job).count()
    aws_job_id = job.job_id if not earlier else f"{job.job_id[:50]}-late-{earlier}"
    AwsJob.objects.create(
        job=job,
        aws_job_id=aws_job_id,
        things=[d.device_id for d in delegated],
        document=document_for(job),
        created_at=now,
        next_attempt_at=now,
    )
    from aws_gateway import tasks

    transaction.on_commit(tasks.send_soon)


def document_for(job: Job) -> dict[str, Any]:
    firmware = job.firmware
    if firmware is None or not jobs.signs_per_device(job):
        return job.document
    return jobs.with_artifact_url(job.document, artifact_url(firmware, job))


def artifact_url(firmware: FirmwareVersion, job: Job) -> str:
    seconds = settings.AWS_ARTIFACT_URL_SECONDS
    if settings.AWS_ARTIFACT_BUCKET:
        return _presigned(firmware, seconds)
    # signed_url signs for FIRMWARE_URL_SECONDS from `now`: move `now` so it lasts `seconds`.
    shifted = time.time() + seconds - settings.FIRMWARE_URL_SECONDS
    return downloads.signed_url(firmware, None, now=shifted, rollout=job.rollout_id)


def _presigned(firmware: FirmwareVersion, seconds: int) -> str:
    s3, bucket = client.client("s3"), settings.AWS_ARTIFACT_BUCKET
    key = f"firmware/{firmware.device_type}/{firmware.version}/{firmware.checksum}.bin"
    if not s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"):
        with catalog.open_artifact(firmware) as artifact:
            s3.upload_fileobj(artifact, bucket, key)
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
    )


def create_due(limit: int = 50, now: datetime | None = None) -> Counter[str]:
    """CreateJob for up to `limit` AWS jobs not created yet; stops at a transient failure."""
    return sending.drain(create_one, limit, now)


def create_one(now: datetime) -> str | None:
    with transaction.atomic():
        row = (
            AwsJob.objects.select_for_update(skip_locked=True)
            .select_related("job")
            .filter(created_on_aws_at__isnull=True, next_attempt_at__lte=now)
            .order_by("id")
            .first()
        )
        if row is None:
            return None
        if row.cancel_requested_at is not None:  # cancelled before AWS ever had it
            row.created_on_aws_at = row.canceled_on_aws_at = now
            row.save(update_fields=["created_on_aws_at", "canceled_on_aws_at"])
            return CANCELED
        try:
            _create_on_aws(row)
        except WindowNotInUtc as refusal:
            return _refused(row, str(refusal), now)
        except errors.AWS_ERRORS as error:
            if errors.code(error) != "ResourceAlreadyExistsException":
                return _failed(row, error, now)
        row.created_on_aws_at, row.last_error = now, ""
        row.save(update_fields=["created_on_aws_at", "last_error"])
        status.ok(LinkPart.JOBS, applied=1)
        return CREATED


def _create_on_aws(row: AwsJob) -> None:
    job = row.job
    configs = {
        aws_name: camel(getattr(job, field))
        for field, aws_name in _CONFIGS.items()
        if getattr(job, field)
    }
    if windows := maintenance_windows(row):
        configs["schedulingConfig"] = {"maintenanceWindows": windows}
    client.client("iot").create_job(
        jobId=row.aws_job_id,
        targets=[client.thing_arn(thing) for thing in row.things],
        document=orjson.dumps(row.document).decode(),
        description=(job.description or f"fleetportal job {job.job_id}")[:2028],
        targetSelection="SNAPSHOT",
        **configs,
    )


def maintenance_windows(row: AwsJob) -> list[dict[str, Any]]:
    """The job's windows as CreateJob takes them ([] for none); WindowNotInUtc for a wave's
    window in another zone for any of these things."""
    job = row.job
    if not job.window_cron:
        return camel(job.scheduling_config.get("maintenance_windows") or [])
    zone = (
        JobTarget.objects.filter(job=job, device__device_id__in=row.things)
        .exclude(time_zone__in=UTC_ZONES)
        .values_list("time_zone", flat=True)
        .first()
    )
    if zone is not None:
        raise WindowNotInUtc(
            f"AWS runs maintenance windows in UTC; this wave's window is in {zone or 'no zone'}."
        )
    return [{"startTime": job.window_cron, "durationInMinutes": job.window_duration_minutes}]


def camel(value: Any) -> Any:
    """The portal's snake_case config (firmware.configs) in AWS's camelCase keys."""
    if isinstance(value, dict):
        return {_camel_key(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _failed(row: AwsJob, error: BaseException, now: datetime) -> str:
    reason = errors.describe(error)
    status.failed(LinkPart.JOBS, f"{row.aws_job_id}: {reason}")
    if errors.is_permanent(error):
        return _refused(row, f"AWS refused the job: {reason}", now)
    return sending.wait_again(row, reason, now)


def _refused(row: AwsJob, reason: str, now: datetime) -> str:
    """The AWS job will never be created: its executions fail with the reason."""
    log.warning("AWS job %s not created: %s", row.aws_job_id, reason)
    JobExecution.objects.filter(
        job=row.job, device__device_id__in=row.things, status=ExecutionStatus.QUEUED
    ).update(
        status=ExecutionStatus.FAILED,
        status_details={"reason": reason[:500]},
        last_updated_at=now,
        followed_up_at=now,
    )
    row.created_on_aws_at, row.last_error = now, reason
    row.save(update_fields=["created_on_aws_at", "last_error"])
    return REFUSED


def canceled(job: Job, force: bool) -> None:
    """firmware.delegation door: the portal job was cancelled; CancelJob its AWS jobs (after
    they are created, if they are not yet)."""
    now = timezone.now()
    waiting = AwsJob.objects.filter(job=job, canceled_on_aws_at__isnull=True)
    if waiting.update(cancel_requested_at=now, cancel_force=force, next_attempt_at=now):
        from aws_gateway import tasks

        transaction.on_commit(tasks.send_soon)


def cancel_due(limit: int = 50, now: datetime | None = None) -> Counter[str]:
    """CancelJob for up to `limit` AWS jobs whose portal job was cancelled."""
    return sending.drain(cancel_one, limit, now)


def cancel_one(now: datetime) -> str | None:
    with transaction.atomic():
        row = (
            AwsJob.objects.select_for_update(skip_locked=True)
            .filter(
                cancel_requested_at__isnull=False,
                canceled_on_aws_at__isnull=True,
                created_on_aws_at__isnull=False,
                next_attempt_at__lte=now,
            )
            .order_by("id")
            .first()
        )
        if row is None:
            return None
        try:
            client.client("iot").cancel_job(
                jobId=row.aws_job_id, force=row.cancel_force, comment="Cancelled in fleetportal"
            )
        except errors.AWS_ERRORS as error:
            if not errors.is_permanent(error):
                return _failed(row, error, now)
            log.warning("AWS refused to cancel %s: %s", row.aws_job_id, errors.describe(error))
        row.canceled_on_aws_at = now
        row.save(update_fields=["canceled_on_aws_at"])
        status.ok(LinkPart.JOBS, applied=1)
        return CANCELED


def register(gateway: str) -> None:
    from firmware import delegation

    delegation.register(gateway, fleet.on_aws, delegate, canceled, window_zones=UTC_ZONES)
