"""AWS IoT Jobs' execution states mirrored into the portal's JobExecution rows.

Two sources say what AWS's executions did: the job execution events a rule forwards to the
queue (`$aws/events/jobExecution/<jobId>/<operation>`: terminal states only), and the
reconcile on beat (ListJobExecutionsForJob for every AWS job of an active portal job: every
state, IN_PROGRESS included, and anything an event lost; it also ends executions past a
wave's start deadline: aws_gateway.start_deadline). Both become ExecutionStates and go
through `apply`, one lock query and one bulk UPDATE per batch.

Exactly once in effect: a state only moves an execution forward — QUEUED to IN_PROGRESS or a
terminal state, IN_PROGRESS to a terminal state; a repeated or older state changes nothing. An
execution number higher than the portal's (AWS retried under its retry config) opens that
attempt as a new row, the earlier one marked superseded.

The portal's engine leaves these executions to AWS: a terminal failure is marked followed up
(AWS's retry config decides retries, not the engine's), so the staged rollouts read it as
final at once and their gates act on it; a firmware job's SUCCEEDED is left to the engine's
confirmation (the device reports the version through its mirrored shadow).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from aws_gateway import client, start_deadline
from aws_gateway.models import AwsJob
from firmware import executions
from firmware.choices import ExecutionStatus, JobStatus
from firmware.models import JobExecution

_RANK: dict[str, int] = {ExecutionStatus.QUEUED.value: 0, ExecutionStatus.IN_PROGRESS.value: 1}
_UPDATED = [
    "status",
    "status_details",
    "started_at",
    "last_updated_at",
    "version_number",
    "followed_up_at",
]


@dataclass(frozen=True)
class ExecutionState:
    """What AWS says of one thing's execution of one AWS job."""

    aws_job_id: str
    thing_name: str
    status: str
    at: datetime
    status_details: dict[str, Any] | None = None
    execution_number: int | None = None  # None: the latest the portal knows (events)


def apply(states: list[ExecutionState], now: datetime | None = None) -> int:
    """Move the executions the states name; returns how many changed."""
    now = now or timezone.now()
    if not states:
        return 0
    # No savepoint inside a caller's transaction: a failure here fails it whole anyway.
    with transaction.atomic(savepoint=False):
        jobs = dict(
            AwsJob.objects.filter(aws_job_id__in={s.aws_job_id for s in states}).values_list(
                "aws_job_id", "job_id"
            )
        )
        known = [s for s in states if s.aws_job_id in jobs]
        latest = _locked_latest(jobs, known)
        changed: dict[Any, JobExecution] = {}
        for state in known:
            key = (jobs[state.aws_job_id], state.thing_name)
            execution = latest.get(key)
            if execution is None:
                continue  # not a device of that job here (removed from the portal)
            if state.execution_number and state.execution_number > execution.execution_number:
                execution = _next_attempt(execution, state.execution_number, now)
                latest[key] = changed[execution.pk] = execution
            if _move(execution, state, now):
                changed[execution.pk] = execution
        JobExecution.objects.bulk_update(changed.values(), _UPDATED)
    return len(changed)


def _locked_latest(jobs: dict[str, Any], states: list[ExecutionState]) -> dict:
    wanted = Q()
    for job_pk in {jobs[s.aws_job_id] for s in states}:
        things = {s.thing_name for s in states if jobs[s.aws_job_id] == job_pk}
        wanted |= Q(job_id=job_pk, device__device_id__in=things)
    rows = (
        JobExecution.objects.select_for_update(of=("self",))
        .select_related("job", "device")
        .filter(wanted)
        .order_by("pk")
    )
    latest: dict = {}
    for row in rows:
        key = (row.job_id, row.device.device_id)
        if key not in latest or row.execution_number > latest[key].execution_number:
            latest[key] = row
    return latest


def _next_attempt(execution: JobExecution, number: int, now: datetime) -> JobExecution:
    JobExecution.objects.filter(pk=execution.pk).update(superseded=True, followed_up_at=now)
    return JobExecution.objects.create(
        job=execution.job,
        device=execution.device,
        execution_number=number,
        status=ExecutionStatus.QUEUED,
        queued_at=now,
        last_updated_at=now,
        gateway=execution.gateway,
    )


def _move(execution: JobExecution, state: ExecutionState, now: datetime) -> bool:
    current, target = execution.status, state.status
    if executions.is_terminal(current) or current == target:
        return False
    if not executions.is_terminal(target) and _RANK.get(target, 0) <= _RANK.get(current, 0):
        return False
    execution.status = target
    if state.status_details is not None:
        execution.status_details = state.status_details
    if target == ExecutionStatus.IN_PROGRESS and execution.started_at is None:
        execution.started_at = state.at
    execution.last_updated_at = state.at
    execution.version_number += 1
    firmware_success = target == ExecutionStatus.SUCCEEDED and execution.job.firmware_id
    if executions.is_terminal(target) and not firmware_success:
        execution.followed_up_at = now  # AWS decided retries; the engine only reads it
    return True


# --- reconcile ----------------------------------------------------------------------------------


def reconcile(now: datetime | None = None) -> int:
    """Every AWS job of an active portal job, read back from AWS (ListJobExecutionsForJob),
    then its executions past a wave's start deadline cancelled (aws_gateway.start_deadline);
    returns how many executions changed. AWS errors propagate (the task records them)."""
    now = now or timezone.now()
    changed = 0
    rows = AwsJob.objects.filter(
        created_on_aws_at__isnull=False, job__status=JobStatus.IN_PROGRESS
    ).order_by("id")
    for row in rows.select_related("job"):
        changed += apply(list(_listed(row.aws_job_id)), now)
        # After the states are read: an execution that started is not cancelled for silence.
        changed += start_deadline.cancel_not_started(row, now)
        AwsJob.objects.filter(pk=row.pk).update(reconciled_at=now)
    return changed


def _listed(aws_job_id: str) -> Iterator[ExecutionState]:
    pages = client.client("iot").get_paginator("list_job_executions_for_job")
    for page in pages.paginate(jobId=aws_job_id):
        for entry in page.get("executionSummaries", []):
            summary = entry["jobExecutionSummary"]
            thing = client.thing_of_arn(entry.get("thingArn", ""))
            if thing and summary.get("status") in ExecutionStatus.values:
                yield ExecutionState(
                    aws_job_id,
                    thing,
                    summary["status"],
                    summary.get("lastUpdatedAt") or timezone.now(),
                    execution_number=summary.get("executionNumber"),
                )
