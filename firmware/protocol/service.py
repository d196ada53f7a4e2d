"""The jobs device protocol (device-protocol.md §2.1-2.5): what a device may ask about its job
executions, served the same over MQTT (handlers.py) and HTTP (device_api.py).

- get_pending: {inProgressJobs, queuedJobs} (IN_PROGRESS first, then QUEUED by queue time);
- start_next: the head QUEUED execution moves to IN_PROGRESS (no notifications, §2.5); while one
  is IN_PROGRESS that one is returned unchanged; nothing pending = no `execution`;
- describe: one execution (`$next` = the head); a terminal one is TerminalStateReached (§2.3);
- update: the device reports a status; legality is firmware.executions', notifications follow
  §2.5 (terminal: notify, + notify-next if the head changed; a non-head moved to IN_PROGRESS
  that became the head: notify-next).

Every change locks its execution rows (select_for_update) in one transaction with its replies
and notifications (outbox). A refusal raises a firmware.errors.JobsError and changes nothing.
Executions are visible to their device only: a decommissioned or unknown thing is
ResourceNotFound.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from devices.choices import DeviceStatus
from devices.models import Device
from firmware import documents, executions, notifications
from firmware.choices import ExecutionStatus as S
from firmware.errors import (
    InvalidStateTransition,
    ResourceNotFound,
    TerminalStateReached,
    VersionMismatch,
)
from firmware.models import JobExecution
from firmware.protocol import firmware_runs, repeats, requests
from fleetportal.actors import DEVICE
from fleetportal.topics import NEXT_JOB

PENDING = list(executions.PENDING)


def actor_of(thing: str) -> str:
    return f"{DEVICE}:{thing}"


def get_pending(thing: str, payload: bytes | str | dict, *, now: datetime) -> dict[str, Any]:
    """GetPendingJobExecutions."""
    body = requests.parse(payload)
    token = requests.client_token(body)
    device = _device(thing)
    in_progress: list[dict[str, Any]] = []
    queued: list[dict[str, Any]] = []
    for execution in notifications.pending([device.pk]):
        listed = in_progress if execution.status == S.IN_PROGRESS else queued
        listed.append(documents.summary(execution))
    return _reply({"inProgressJobs": in_progress, "queuedJobs": queued}, token, now)


def start_next(
    thing: str, payload: bytes | str | dict, *, now: datetime, redelivered: bool = False
) -> dict[str, Any]:
    """StartNextPendingJobExecution."""
    body = requests.parse(payload)
    token = requests.client_token(body)
    details = requests.status_details(body)
    step = requests.step_timeout(body, may_clear=False)
    asked = requests.digest("start-next", "", body)
    with transaction.atomic():
        device = _device(thing)
        # All of the device's pending rows, locked in pk order (as everyone locks them): two
        # start-nexts at once queue up and the second sees the first one's IN_PROGRESS.
        rows = list(
            _executions(device)
            .select_for_update(of=("self",))
            .filter(status__in=PENDING)
            .order_by("pk")
        )
        repeated = _repeated_start(device, token, asked, now, redelivered)
        if repeated is not None:
            return repeated
        if not rows:
            return _reply({}, token, now)
        head = min(rows, key=_queue_order)
        if head.status == S.QUEUED:
            _check_update(head, S.IN_PROGRESS, None)
            _report(head, S.IN_PROGRESS, details, step, now)
            repeats.remember(head, token, asked, now)
            head.save()
            # A start-next tells the device nothing it did not ask for: no notify (§2.5).
            firmware_runs.started(head, actor=actor_of(thing))
        return _reply({"execution": documents.execution_data(head)}, token, now)


def describe(
    thing: str, job_id: str, payload: bytes | str | dict, *, now: datetime
) -> dict[str, Any]:
    """DescribeJobExecution; `$next` names the head (IN_PROGRESS first, then QUEUED)."""
    body = requests.parse(payload)
    token = requests.client_token(body)
    number = requests.execution_number(body)
    include_document = requests.flag(body, "includeJobDocument", True)
    device = _device(thing)
    if job_id == NEXT_JOB:
        head = notifications.pending([device.pk]).first()
        if head is None:
            return _reply({}, token, now)
        execution = head
    else:
        execution = _find(device, job_id, number)
        if executions.is_terminal(execution.status):
            raise TerminalStateReached(
                f"Job execution {job_id} is in the terminal state {execution.status}."
            )
    data = documents.execution_data(execution, include_document=include_document)
    return _reply({"execution": data}, token, now)


def update(
    thing: str,
    job_id: str,
    payload: bytes | str | dict,
    *,
    now: datetime,
    redelivered: bool = False,
) -> dict[str, Any]:
    """UpdateJobExecution. With default flags the answer is just {timestamp, clientToken}."""
    body = requests.parse(payload)
    token = requests.client_token(body)
    target = requests.status(body, S.values)
    details = requests.status_details(body)
    step = requests.step_timeout(body, may_clear=True)
    expected = requests.expected_version(body)
    number = requests.execution_number(body)
    include_state = requests.flag(body, "includeJobExecutionState", False)
    include_document = requests.flag(body, "includeJobDocument", False)
    asked = requests.digest("update", job_id, body)
    with transaction.atomic():
        device = _device(thing)
        execution = _find(device, job_id, number, lock=True)
        entry = repeats.original(execution, token, asked, now, redelivered=redelivered)
        if entry is not None:
            state, moment = entry["state"], entry["at"]
        else:
            _check_update(execution, target, expected)
            heads_before = notifications.heads([device.pk])
            previous = execution.status
            _report(execution, target, details, step, now)
            repeats.remember(execution, token, asked, now)
            execution.save()
            _after_report(execution, previous, heads_before, actor_of(thing))
            state, moment = documents.state(execution), now.timestamp()
        answer: dict[str, Any] = {}
        if include_state:
            answer["executionState"] = state
        if include_document:
            answer["jobDocument"] = documents.job_document(execution)
        return _reply(answer, token, moment)


def _check_update(execution: JobExecution, target: str, expected: int | None) -> None:
    if expected is not None and expected != execution.version_number:
        raise VersionMismatch(
            f"expectedVersion {expected} is not the execution's version "
            f"{execution.version_number}.",
            execution_state=documents.state(execution),
        )
    if not executions.device_may_move(execution.status, target):
        raise InvalidStateTransition(
            f"A job execution in {execution.status} cannot be moved to {target}.",
            execution_state=documents.state(execution),
        )


def _report(
    execution: JobExecution, target: str, details: dict | None, step: int | None, now: datetime
) -> None:
    """Apply a device's legal report (checked by the caller through firmware.executions); the
    move into IN_PROGRESS sets startedAt and the deadline of the job's timeoutConfig."""
    if execution.status == S.QUEUED and target == S.IN_PROGRESS:
        execution.started_at = now
        minutes = (execution.job.timeout_config or {}).get("in_progress_timeout_in_minutes")
        # Fixed once running (§2.6): only the move into IN_PROGRESS sets it.
        execution.in_progress_deadline = now + timedelta(minutes=minutes) if minutes else None
    execution.status = target
    if details is not None:
        execution.status_details = details
    execution.version_number += 1
    execution.last_updated_at = now
    if executions.is_terminal(target):
        execution.in_progress_deadline = execution.step_deadline = None
    elif step == requests.CLEAR_STEP_TIMER:
        execution.step_deadline = None
    elif step is not None:
        # A step timer replaces the earlier one but never runs past the in-progress deadline.
        deadline = now + timedelta(minutes=step)
        if execution.in_progress_deadline is not None:
            deadline = min(deadline, execution.in_progress_deadline)
        execution.step_deadline = deadline


def _after_report(execution: JobExecution, previous: str, heads_before: dict, actor: str) -> None:
    """Notifications (§2.5) and the device's firmware run, after the row is saved."""
    device_pks = [execution.device_id]
    if executions.is_terminal(execution.status):
        notifications.send_changes(device_pks, heads_before)
        firmware_runs.ended(execution, actor=actor)
    elif previous == S.QUEUED:
        notifications.send_next_changes(device_pks, heads_before)
        firmware_runs.started(execution, actor=actor)


def _repeated_start(
    device: Device, token: str | None, asked: str, now: datetime, redelivered: bool
) -> dict[str, Any] | None:
    """The original answer of a start-next this one repeats (its execution may have moved on
    since: a redelivered start-next must not start the next one)."""
    if token is None:
        return None
    found = _executions(device).filter(recent_client_tokens__contains=[{"token": token}])
    for execution in found:
        entry = repeats.original(execution, token, asked, now, redelivered=redelivered)
        if entry is not None:
            data = documents.execution_data(execution)
            data.pop("statusDetails", None)
            data.update(entry["state"])
            data["lastUpdatedAt"] = int(entry["at"])
            return _reply({"execution": data}, token, entry["at"])
    return None


def _device(thing: str) -> Device:
    device = Device.objects.filter(device_id=thing).first()
    if device is None or device.status == DeviceStatus.DECOMMISSIONED:
        raise ResourceNotFound(f"Thing {thing} not found.")
    return device


def _executions(device: Device):
    return JobExecution.objects.filter(device=device).select_related("job", "device")


def _find(device: Device, job_id: str, number: int | None, *, lock: bool = False):
    """The device's execution of `job_id`: `number`, or its latest attempt."""
    found = _executions(device).filter(job__job_id=job_id)
    if lock:
        found = found.select_for_update(of=("self",))
    if number is not None:
        found = found.filter(execution_number=number)
    execution = found.order_by("-execution_number").first()
    if execution is None:
        raise ResourceNotFound(f"Job execution {job_id} of {device.device_id} not found.")
    return execution


def _queue_order(execution: JobExecution) -> tuple:
    # As notifications.pending orders them: what `$next` and the device's lists name first.
    return (execution.status != S.IN_PROGRESS, execution.queued_at, execution.pk)


def _reply(body: dict[str, Any], token: str | None, moment: datetime | float) -> dict[str, Any]:
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    body["timestamp"] = int(seconds)
    if token is not None:
        body["clientToken"] = token
    return body
