"""The engine's hot path: a batch of a job's targets becomes QUEUED executions, and their devices
get `notify` and `notify-next` (device-protocol.md §2.5) in the same transaction.

A job to 100,000 devices is 20 such batches, so a batch is a constant number of statements,
whatever its size:

1. one statement marks the targets released, inserts their executions (numbered after earlier
   attempts at the job) and returns, per device, its thing name and its head *before* the insert
   — the statement's subquery reads the snapshot the insert does not change;
2. a device that had nothing pending (every device of a fresh release) now has exactly its new
   execution: that is its whole `notify` list and its new head, so both documents are built from
   the values just inserted, without reading anything back. The part of them that is the same
   for every device (the summary, the job document) is serialized once per batch;
3. the devices that had something pending go through `notifications.send_changes`, which reads
   their lists back and compares heads, as every other change of executions does;
4. all of it is written to the outbox with one COPY.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from devices.models import Device
from firmware import documents, notifications
from firmware.choices import ExecutionStatus
from firmware.models import Job, JobExecution, JobTarget
from fleetportal import outbox, topics

_EXECUTIONS = JobExecution._meta.db_table
# A head is what `$next` names: IN_PROGRESS before QUEUED, then by queue time
# (notifications._ORDER, here in SQL).
_RELEASE = f"""
WITH released AS (
    UPDATE {JobTarget._meta.db_table} SET released_at = %(now)s WHERE id IN (
        SELECT id FROM {JobTarget._meta.db_table}
        WHERE job_id = %(job)s AND late = %(late)s AND released_at IS NULL
          AND (%(zones)s::text[] IS NULL OR time_zone = ANY(%(zones)s::text[]))
        ORDER BY position, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING id, device_id
), queued AS (
    INSERT INTO {_EXECUTIONS} (job_id, device_id, execution_number, status, status_details,
        version_number, queued_at, last_updated_at, recent_client_tokens, superseded)
    SELECT %(job)s, released.device_id, COALESCE(MAX(earlier.execution_number), 0) + 1,
           %(queued)s, '{{}}'::jsonb, 1, %(now)s, %(now)s, '[]'::jsonb, false
    FROM released
    LEFT JOIN {_EXECUTIONS} earlier
      ON earlier.job_id = %(job)s AND earlier.device_id = released.device_id
    GROUP BY released.id, released.device_id
    ORDER BY released.id
    RETURNING id, device_id, execution_number
)
SELECT queued.device_id, device.device_id, queued.execution_number,
       (SELECT head.id FROM {_EXECUTIONS} head
        WHERE head.device_id = queued.device_id
          AND head.status IN (%(in_progress)s, %(queued)s)
        ORDER BY CASE WHEN head.status = %(in_progress)s THEN 0 ELSE 1 END,
                 head.queued_at, head.id
        LIMIT 1)
FROM queued JOIN {Device._meta.db_table} device ON device.id = queued.device_id
ORDER BY queued.id
"""  # noqa: S608  (table names from the models; values are parameters)


@dataclass(frozen=True)
class Released:
    """A device whose target was just released, with what its notifications need."""

    device_pk: Any
    thing: str
    execution_number: int
    head_before: int | None  # its head execution before the release; None: nothing pending


def release_targets(
    job: Job, now: datetime, *, late: bool, limit: int, zones: list[str] | None = None
) -> int:
    """Release up to `limit` of the job's unreleased targets (late joiners or the initial ones)
    into QUEUED executions and notify their devices; returns how many. Targets go by position
    (a rollout wave's jitter; null on plain jobs) then creation order; with `zones`, only
    targets whose time_zone is one of them (their maintenance window is open)."""
    if limit <= 0:
        return 0
    released = _release(job, now, late=late, limit=limit, zones=zones)
    fresh = [row for row in released if row.head_before is None]
    outbox.send_many(fresh_messages(job, fresh, now))
    busy: dict[Any, int | None] = {
        row.device_pk: row.head_before for row in released if row.head_before is not None
    }
    notifications.send_changes(list(busy), busy)
    return len(released)


def _release(
    job: Job, now: datetime, *, late: bool, limit: int, zones: list[str] | None
) -> list[Released]:
    parameters: dict[str, Any] = {
        "job": job.pk,
        "late": late,
        "limit": limit,
        "zones": zones,
        "now": now,
        "queued": ExecutionStatus.QUEUED,
        "in_progress": ExecutionStatus.IN_PROGRESS,
    }
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE, parameters)
        return [Released(*row) for row in cursor.fetchall()]


def fresh_messages(
    job: Job, fresh: list[Released], queued_at: datetime
) -> list[tuple[str, bytes, str]]:
    """`notify` and `notify-next` for devices whose only pending execution is the one just
    queued: the same documents `notifications.send_changes` would read back and build."""
    timestamp = documents.epoch(timezone.now())
    per_device = documents.document_per_device(job)
    shapes: dict[int, tuple[bytes, dict[str, Any]]] = {}
    messages = []
    for row in fresh:
        if row.execution_number not in shapes:
            shapes[row.execution_number] = _shape(job, row, queued_at, timestamp)
        notify, execution = shapes[row.execution_number]
        if per_device:
            execution = documents.execution_data(_queued(job, row, queued_at))
        else:
            execution = {**execution, "thingName": row.thing}  # keeps the key's place
        next_body = orjson.dumps({"timestamp": timestamp, "execution": execution})
        for kind, body in ((topics.JOBS_NOTIFY, notify), (topics.JOBS_NOTIFY_NEXT, next_body)):
            messages.append((topics.jobs_topic(row.thing, kind), body, row.thing))
    return messages


def _shape(
    job: Job, row: Released, queued_at: datetime, timestamp: int
) -> tuple[bytes, dict[str, Any]]:
    """What every fresh device with this execution number is sent: the whole `notify` (it names
    no device), and notify-next's execution with the job document serialized once."""
    execution = _queued(job, row, queued_at)
    notify = orjson.dumps(notifications.notify_document([execution], timestamp))
    data = documents.execution_data(execution)
    data["jobDocument"] = orjson.Fragment(orjson.dumps(data["jobDocument"]))
    return notify, data


def _queued(job: Job, row: Released, queued_at: datetime) -> JobExecution:
    """The execution the release statement inserted for this device, as documents read it."""
    return JobExecution(
        job=job,
        device=Device(pk=row.device_pk, device_id=row.thing),
        execution_number=row.execution_number,
        status=ExecutionStatus.QUEUED.value,  # plain str, as read from a row: a dict key in notify
        status_details={},
        version_number=1,
        queued_at=queued_at,
        last_updated_at=queued_at,
    )
