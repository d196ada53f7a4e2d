"""A device's requests applied to execution rows in memory (device-protocol.md §2.2, §2.4, §2.5)
— plain Python, no database.

The one-by-one service (service.py) and the bridge's batches (batch.py) both load rows their
own way and then call these, so legality, what a report changes, which execution is next,
which notifications a move triggers and what the device is answered are decided in one place.
Legality itself is firmware.executions'.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from firmware import documents, executions
from firmware.choices import ExecutionStatus as S
from firmware.errors import InvalidStateTransition, ResourceNotFound, VersionMismatch
from firmware.models import JobExecution
from firmware.protocol import repeats, requests

# What a device's request may change on its execution (report + repeats.remember): the batch
# writes exactly these back.
CHANGED_FIELDS = (
    "status",
    "status_details",
    "version_number",
    "started_at",
    "last_updated_at",
    "in_progress_deadline",
    "step_deadline",
    "recent_client_tokens",
    "start_token",
)

# What a move tells the device (§2.5): `notify` with its list and `notify-next` if its head
# changed; or `notify-next` alone if its head changed; or nothing.
NOTIFY_ALL = "notify"
NOTIFY_NEXT = "notify-next"


def thing_not_found(thing: str) -> ResourceNotFound:
    return ResourceNotFound(f"Thing {thing} not found.")


def execution_not_found(job_id: str, thing: str) -> ResourceNotFound:
    return ResourceNotFound(f"Job execution {job_id} of {thing} not found.")


def queue_order(execution: JobExecution) -> tuple:
    # As notifications.pending orders them: what `$next` and the device's lists name first.
    return (execution.status != S.IN_PROGRESS, execution.queued_at, execution.pk)


def head(pending: Sequence[JobExecution]) -> JobExecution | None:
    """The execution `$next` and start-next name: IN_PROGRESS first, then QUEUED by queue time."""
    return min(pending, key=queue_order) if pending else None


def check_update(execution: JobExecution, target: str, expected: int | None) -> None:
    """Refuse a stale expectedVersion or a move the device may not make (§2.4)."""
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


def start(head: JobExecution, request: requests.StartNext, now: datetime) -> None:
    """start-next on a QUEUED head: it moves to IN_PROGRESS, and the request is remembered."""
    check_update(head, S.IN_PROGRESS, None)
    # The plain value, as a row read back holds it (notify documents key their lists by it).
    report(head, S.IN_PROGRESS.value, request.details, request.step, now)
    repeats.remember(head, request.token, request.asked, now)
    head.start_token = request.token or ""


def update(execution: JobExecution, request: requests.Update, now: datetime) -> None:
    """A device's update: checked, applied and remembered (raises the refusal otherwise)."""
    check_update(execution, request.target, request.expected)
    report(execution, request.target, request.details, request.step, now)
    repeats.remember(execution, request.token, request.asked, now)


def report(
    execution: JobExecution, target: str, details: dict | None, step: int | None, now: datetime
) -> None:
    """Apply a device's legal report (checked by check_update); the move into IN_PROGRESS sets
    startedAt and the deadline of the job's timeoutConfig."""
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


def notification(previous: str, current: str) -> str | None:
    """Which notifications a device's move from `previous` to `current` triggers (§2.5)."""
    if executions.is_terminal(current):
        return NOTIFY_ALL
    if previous == S.QUEUED:
        # A non-head execution moved IN_PROGRESS became the head: notify-next only. (start-next
        # moves the head itself, which changes nothing the device does not know: no call here.)
        return NOTIFY_NEXT
    return None


def starts_or_ends(previous: str, current: str) -> bool:
    """Does the move start or end the execution's run (firmware jobs act on both)?"""
    return executions.is_terminal(current) or (previous == S.QUEUED and current == S.IN_PROGRESS)


def start_next_answer(head: JobExecution | None, token: str | None, now: datetime):
    """start-next's accepted document: the head after the request, or no `execution`."""
    body = {} if head is None else {"execution": documents.execution_data(head)}
    return reply(body, token, now)


def update_answer(
    execution: JobExecution, request: requests.Update, state: dict[str, Any], moment: float
) -> dict[str, Any]:
    """update's accepted document: {timestamp, clientToken} plus what the flags ask for."""
    answer: dict[str, Any] = {}
    if request.include_state:
        answer["executionState"] = state
    if request.include_document:
        answer["jobDocument"] = documents.job_document(execution)
    return reply(answer, request.token, moment)


def reply(body: dict[str, Any], token: str | None, moment: datetime | float) -> dict[str, Any]:
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    body["timestamp"] = int(seconds)
    if token is not None:
        body["clientToken"] = token
    return body
