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

from datetime import datetime
from typing import Any

from django.db import transaction

from devices.choices import DeviceStatus
from devices.models import Device
from firmware import documents, executions, notifications
from firmware.choices import ExecutionStatus as S
from firmware.errors import TerminalStateReached
from firmware.models import JobExecution
from firmware.protocol import firmware_runs, moves, repeats, requests
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
    return moves.reply({"inProgressJobs": in_progress, "queuedJobs": queued}, token, now)


def start_next(
    thing: str, payload: bytes | str | dict, *, now: datetime, redelivered: bool = False
) -> dict[str, Any]:
    """StartNextPendingJobExecution."""
    request = requests.start_next(payload)
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
        repeated = _repeated_start(device, request.token, request.asked, now, redelivered)
        if repeated is not None:
            return repeated
        head = moves.head(rows)
        if head is not None and head.status == S.QUEUED:
            moves.start(head, request, now)
            head.save()
            # A start-next tells the device nothing it did not ask for: no notify (§2.5).
            firmware_runs.started(head, actor=actor_of(thing))
        return moves.start_next_answer(head, request.token, now)


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
            return moves.reply({}, token, now)
        execution = head
    else:
        execution = _find(device, job_id, number)
        if executions.is_terminal(execution.status):
            raise TerminalStateReached(
                f"Job execution {job_id} is in the terminal state {execution.status}."
            )
    data = documents.execution_data(execution, include_document=include_document)
    return moves.reply({"execution": data}, token, now)


def update(
    thing: str,
    job_id: str,
    payload: bytes | str | dict,
    *,
    now: datetime,
    redelivered: bool = False,
) -> dict[str, Any]:
    """UpdateJobExecution. With default flags the answer is just {timestamp, clientToken}."""
    request = requests.update(job_id, payload)
    with transaction.atomic():
        device = _device(thing)
        execution = _find(device, job_id, request.number, lock=True)
        entry = repeats.original(
            execution, request.token, request.asked, now, redelivered=redelivered
        )
        if entry is not None:
            return moves.update_answer(execution, request, entry["state"], entry["at"])
        heads_before = notifications.heads([device.pk])
        previous = execution.status
        moves.update(execution, request, now)
        execution.save()
        _after_report(execution, previous, heads_before, actor_of(thing))
        return moves.update_answer(execution, request, documents.state(execution), now.timestamp())


def _after_report(execution: JobExecution, previous: str, heads_before: dict, actor: str) -> None:
    """Notifications (§2.5) and the device's firmware run, after the row is saved."""
    notify = moves.notification(previous, execution.status)
    if notify is not None:
        notifications.send([execution.device_id], heads_before, notify=notify == moves.NOTIFY_ALL)
    if executions.is_terminal(execution.status):
        firmware_runs.ended(execution, actor=actor)
    elif previous == S.QUEUED:
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
            return moves.reply({"execution": data}, token, entry["at"])
    return None


def _device(thing: str) -> Device:
    device = Device.objects.filter(device_id=thing).first()
    if device is None or device.status == DeviceStatus.DECOMMISSIONED:
        raise moves.thing_not_found(thing)
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
        raise moves.execution_not_found(job_id, device.device_id)
    return execution
