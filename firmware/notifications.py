"""`notify` and `notify-next` (device-protocol.md §2.5), sent through the outbox so a notification
made while the broker is down reaches the device when it returns.

Whoever changes executions asks for the devices' heads first and hands them back after:

    before = notifications.heads(device_pks)
    ... queue, finish, cancel, time out or remove executions ...
    notifications.send_changes(device_pks, before)

Every device in `device_pks` gets `notify` with its pending list (IN_PROGRESS before QUEUED, at
most 10); a device whose head (the execution `$next` names) changed also gets `notify-next`.
A QUEUED -> IN_PROGRESS move of the head by start-next changes no list a device does not know,
so callers leave that device out (§2.5: start-next sends nothing).
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Case, F, IntegerField, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from firmware import documents
from firmware.choices import ExecutionStatus
from firmware.models import Job, JobExecution
from fleetportal import outbox, topics

LIST_LIMIT = 10  # entries in one notify (AWS: 10)
# The execution fields firmware.documents reads.
DOCUMENT_FIELDS = (
    "job",
    "device",
    "status",
    "status_details",
    "queued_at",
    "started_at",
    "last_updated_at",
    "version_number",
    "execution_number",
)


# Devices see IN_PROGRESS first, then QUEUED by queue time.
_RANK = Case(
    When(status=ExecutionStatus.IN_PROGRESS, then=Value(0)),
    default=Value(1),
    output_field=IntegerField(),
)
_ORDER = ("device_id", "rank", "queued_at", "pk")


def _pending_rows(device_pks: Iterable[Any]):
    return JobExecution.objects.filter(
        device_id__in=list(device_pks),
        status__in=[ExecutionStatus.IN_PROGRESS, ExecutionStatus.QUEUED],
    ).annotate(rank=_RANK)


def pending(device_pks: Iterable[Any], *, limit: int | None = None):
    """The devices' pending executions in the order devices see them (served by
    execution_pending_idx); with `limit`, at most that many per device."""
    rows = _pending_rows(device_pks)
    if limit is not None:
        position = Window(RowNumber(), partition_by=F("device_id"), order_by=_ORDER[1:])
        rows = rows.annotate(position=position).filter(position__lte=limit)
    return rows.order_by(*_ORDER).select_related("job", "device")


def heads(device_pks: Iterable[Any]) -> dict[Any, int | None]:
    """Each device's head execution (its pk), None when nothing is pending: one row a device."""
    found: dict[Any, int | None] = dict.fromkeys(device_pks)
    rows = _pending_rows(found).order_by(*_ORDER).distinct("device_id")
    found.update(rows.values_list("device_id", "pk"))
    return found


def send_changes(device_pks: Iterable[Any], heads_before: dict[Any, int | None]) -> None:
    """Queue `notify` for every device and `notify-next` for those whose head changed."""
    send(device_pks, heads_before, notify=True)


def send_next_changes(device_pks: Iterable[Any], heads_before: dict[Any, int | None]) -> None:
    """Queue only `notify-next`, for the devices whose head changed: a non-head execution the
    device moved to IN_PROGRESS, which so became the head (§2.5), changes no list `notify` tells."""
    send(device_pks, heads_before, notify=False)


def send(device_pks: Iterable[Any], heads_before: dict[Any, int | None], *, notify: bool) -> None:
    """send_changes (`notify`) or send_next_changes (not), from the rows as they are now."""
    device_pks = list(device_pks)
    if not device_pks:
        return
    lists: dict[Any, list[JobExecution]] = defaultdict(list)
    names: dict[Any, str] = {}
    for execution in _listed(device_pks):
        lists[execution.device_id].append(execution)
        names[execution.device_id] = execution.device.device_id
    missing = [pk for pk in device_pks if pk not in names]
    if missing:
        from devices.models import Device

        names.update(Device.objects.filter(pk__in=missing).values_list("pk", "device_id"))
    now = documents.epoch(timezone.now())
    messages: list[tuple[str, dict, str]] = []
    for pk in device_pks:
        thing = names.get(pk)
        if thing is not None:
            listed = lists.get(pk, [])
            messages += device_messages(thing, listed, heads_before.get(pk), notify=notify, now=now)
    outbox.send_many(messages)


def device_messages(
    thing: str, listed: list[JobExecution], head_before: Any, *, notify: bool, now: int
) -> list[tuple[str, dict, str]]:
    """One device's notifications, (topic, document, thing) in the order they are sent, from
    its first pending executions in order (`listed`, at least LIST_LIMIT of them when it has
    that many) and the pk of its head before the change."""
    messages = []
    if notify:
        document = notify_document(listed, now)
        messages.append((topics.jobs_topic(thing, topics.JOBS_NOTIFY), document, thing))
    head = listed[0] if listed else None
    if (head.pk if head else None) != head_before:
        body: dict[str, Any] = {"timestamp": now}
        if head is not None:
            body["execution"] = documents.execution_data(head)
        messages.append((topics.jobs_topic(thing, topics.JOBS_NOTIFY_NEXT), body, thing))
    return messages


def _listed(device_pks: list[Any]) -> list[JobExecution]:
    """What notify and notify-next tell, light: the execution fields the documents use, the
    device's id, and each job loaded once (a release notifies thousands of devices of one job,
    whose document need not be read and decoded thousands of times)."""
    rows = list(
        pending(device_pks, limit=LIST_LIMIT)
        .select_related(None)
        .select_related("device")
        .only(*DOCUMENT_FIELDS, "device__device_id")
    )
    jobs = Job.objects.in_bulk({row.job_id for row in rows})
    for row in rows:
        row.job = jobs[row.job_id]
    return rows


def notify_document(executions: list[JobExecution], now: int) -> dict[str, Any]:
    """JobExecutionsChanged: {"timestamp", "jobs": {"IN_PROGRESS": [...], "QUEUED": [...]}}, the
    empty lists left out ({"jobs": {}} when nothing is pending)."""
    jobs: dict[str, list] = {}
    for execution in executions[:LIST_LIMIT]:
        jobs.setdefault(execution.status, []).append(documents.summary(execution))
    return {"timestamp": now, "jobs": jobs}
