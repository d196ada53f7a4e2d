"""The statements of the jobs batch (batch.py): lock and load what a bridge batch's requests
need with one query, and write its changed executions back with one.

Lock and load, for the batch's devices (by device_id):
- the device row (unlocked, as the service reads it);
- its first pending executions in queue order — IN_PROGRESS ones, then QUEUED ones, each part
  at most `window` rows, read in the order of execution_pending_idx — enough for the heads
  and the `notify` lists of the batch's moves;
- every attempt of the (device, job) pairs the batch's updates name;
- the executions whose recent clientTokens hold one of the batch's start-next tokens and that
  changed since `since` (older entries cannot make a repeat of a message not redelivered);
all locked FOR UPDATE in pk order, the order every writer of executions locks them in; and the
job fields the documents read (plus a firmware job's version fields, for its signed URL), sent
once per job rather than once per row.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson
import psycopg
from django.db import connection
from psycopg.types.json import set_json_loads

from devices.models import Device
from firmware.choices import ExecutionStatus as S
from firmware.executions import PENDING
from firmware.models import FirmwareVersion, Job, JobExecution
from firmware.protocol import moves


def _attnames(model, wanted: Iterable[str]) -> list[str]:
    # Model.from_db takes the loaded fields in the model's field order.
    return [f.attname for f in model._meta.concrete_fields if f.attname in set(wanted)]


EXECUTION_ATTNAMES = [f.attname for f in JobExecution._meta.concrete_fields]
EXECUTION_COLUMNS = [f.column for f in JobExecution._meta.concrete_fields]
DEVICE_ATTNAMES = _attnames(Device, ("id", "device_id", "status"))
# What firmware.documents, moves.report and firmware.jobs.delivered_document read of a job and
# of its firmware version.
JOB_ATTNAMES = _attnames(Job, ("id", "job_id", "document", "firmware_id", "timeout_config"))
FIRMWARE_ATTNAMES = _attnames(FirmwareVersion, ("id", "artifact", "file_url"))

_E, _J = JobExecution._meta.db_table, Job._meta.db_table
_D, _F = Device._meta.db_table, FirmwareVersion._meta.db_table


def _columns(alias: str, names: list[str]) -> str:
    return ", ".join(f"{alias}.{name}" for name in names)


def _window_part(status: S) -> str:
    return (
        f"(SELECT e.id, {status == S.IN_PROGRESS} AS in_progress FROM {_E} AS e "  # noqa: S608
        f"WHERE e.device_id = d.id AND e.status = '{status.value}' "
        "ORDER BY e.queued_at, e.id LIMIT %(window)s)"
    )


LOAD_SQL = f"""
WITH device AS (
    SELECT {", ".join(DEVICE_ATTNAMES)} FROM {_D} WHERE device_id = ANY(%(things)s::text[])
), window_rows AS (
    SELECT x.id, x.in_progress FROM device AS d, LATERAL (
        {_window_part(S.IN_PROGRESS)} UNION ALL {_window_part(S.QUEUED)}
    ) AS x
), wanted AS (
    SELECT id FROM window_rows
    UNION
    SELECT e.id FROM {_E} AS e
    JOIN device AS d ON d.id = e.device_id JOIN {_J} AS j ON j.id = e.job_id
    WHERE (d.device_id, j.job_id) IN (
        SELECT * FROM unnest(%(named_things)s::text[], %(named_jobs)s::text[]))
    UNION
    SELECT e.id FROM {_E} AS e JOIN device AS d ON d.id = e.device_id
    WHERE d.device_id = ANY(%(starting)s::text[]) AND e.last_updated_at >= %(since)s
    AND EXISTS (SELECT FROM jsonb_array_elements(e.recent_client_tokens) AS t
                WHERE t ->> 'token' = ANY(%(tokens)s::text[]))
), locked AS (
    SELECT * FROM {_E} WHERE id IN (SELECT id FROM wanted) ORDER BY id FOR UPDATE
)
SELECT {_columns("d", DEVICE_ATTNAMES)}, w.in_progress, {_columns("l", EXECUTION_COLUMNS)},
       {_columns("j", JOB_ATTNAMES)}, {_columns("f", FIRMWARE_ATTNAMES)}
FROM device AS d
LEFT JOIN (SELECT *, row_number() OVER (PARTITION BY job_id ORDER BY id) = 1 AS first_of_job
           FROM locked) AS l ON l.device_id = d.id
LEFT JOIN window_rows AS w ON w.id = l.id
LEFT JOIN {_J} AS j ON j.id = l.job_id AND l.first_of_job
LEFT JOIN {_F} AS f ON f.id = j.firmware_id
"""  # noqa: S608

# The fields a device's request changes (moves.CHANGED_FIELDS), one UPDATE for the batch; the
# rows travel as one JSON document, as the shadows' batch writes do (shadows/writes.py).
_TYPES = {
    "status": "text",
    "status_details": "jsonb",
    "version_number": "integer",
    "started_at": "timestamptz",
    "last_updated_at": "timestamptz",
    "in_progress_deadline": "timestamptz",
    "step_deadline": "timestamptz",
    "recent_client_tokens": "jsonb",
}
UPDATE_SQL = (
    f"UPDATE {_E} AS e SET "  # noqa: S608
    + ", ".join(f"{name} = v.{name}" for name in moves.CHANGED_FIELDS)
    + " FROM json_to_recordset(%s::json) AS v(id bigint, "
    + ", ".join(f"{name} {_TYPES[name]}" for name in moves.CHANGED_FIELDS)
    + ") WHERE e.id = v.id"
)


@dataclass
class DeviceJobs:
    """One device as a batch knows it: its row and the executions loaded for it."""

    device: Device
    executions: list[JobExecution]
    # The queue order of the last pending execution loaded when the device may have more
    # pending than were loaded (all of those come after it); None when every one was loaded.
    frontier: tuple | None

    def first(self, count: int) -> list[JobExecution] | None:
        """The device's first `count` pending executions in queue order (fewer when it has
        fewer), or None when the batch cannot tell them from what it loaded."""
        known = sorted(
            (
                e
                for e in self.executions
                if e.status in PENDING
                and (self.frontier is None or moves.queue_order(e) <= self.frontier)
            ),
            key=moves.queue_order,
        )
        if self.frontier is None or len(known) >= count:
            return known[:count]
        return None

    def find(self, job_id: str, number: int | None) -> JobExecution | None:
        """Its execution of `job_id`: attempt `number`, or the latest (the service's _find)."""
        attempts = [e for e in self.executions if e.job.job_id == job_id]
        if number is not None:
            return next((e for e in attempts if e.execution_number == number), None)
        return max(attempts, key=attrgetter("execution_number")) if attempts else None


def load(
    things: Iterable[str],
    *,
    window: int,
    named: Iterable[tuple[str, str]],
    tokens: Iterable[str],
    starting: Iterable[str],
    since: datetime,
) -> dict[str, DeviceJobs]:
    """Lock and load (LOAD_SQL); the known devices by device_id."""
    named = sorted(named)
    params = {
        "things": sorted(things),
        "window": window,
        "named_things": [thing for thing, _ in named],
        "named_jobs": [job_id for _, job_id in named],
        "starting": sorted(starting),
        "since": since,
        "tokens": sorted(tokens),
    }
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        # Django reads jsonb as text and parses it in the field; here orjson parses it at once.
        set_json_loads(orjson.loads, cursor)
        cursor.execute(LOAD_SQL, params)
        return _build(cursor.fetchall(), window)


def _build(rows: list[tuple], window: int) -> dict[str, DeviceJobs]:
    devices: dict[str, DeviceJobs] = {}
    jobs: dict[Any, Job] = {}
    parts: dict[str, tuple[list, list]] = {}  # window rows per device: IN_PROGRESS, QUEUED
    sizes = [len(DEVICE_ATTNAMES), 1, len(EXECUTION_ATTNAMES), len(JOB_ATTNAMES)]
    for row in rows:
        values = _split(row, sizes)
        device_values, (in_progress,), execution_values, job_values, firmware_values = values
        thing = device_values[DEVICE_ATTNAMES.index("device_id")]
        if thing not in devices:
            device = Device.from_db(connection.alias, DEVICE_ATTNAMES, device_values)
            devices[thing] = DeviceJobs(device, [], None)
            parts[thing] = ([], [])
        if execution_values[0] is None:
            continue  # a device with nothing loaded
        execution = JobExecution.from_db(connection.alias, EXECUTION_ATTNAMES, execution_values)
        execution.device = devices[thing].device
        devices[thing].executions.append(execution)
        if in_progress is not None:
            parts[thing][0 if in_progress else 1].append(execution)
        if job_values[0] is not None:
            jobs[execution.job_id] = _job(job_values, firmware_values)
    for thing, loaded in devices.items():
        for execution in loaded.executions:
            execution.job = jobs[execution.job_id]
        loaded.frontier = _frontier(*parts[thing], window)
    return devices


def _split(row: tuple, sizes: list[int]) -> list[tuple]:
    values, start = [], 0
    for size in sizes:
        values.append(row[start : start + size])
        start += size
    values.append(row[start:])
    return values


def _job(job_values: tuple, firmware_values: tuple) -> Job:
    job = Job.from_db(connection.alias, JOB_ATTNAMES, job_values)
    if job.firmware_id is not None:
        job.firmware = FirmwareVersion.from_db(connection.alias, FIRMWARE_ATTNAMES, firmware_values)
    return job


def _frontier(in_progress: list, queued: list, window: int) -> tuple | None:
    # A part that filled its window may have more rows after it; IN_PROGRESS ones come first.
    for part in (in_progress, queued):
        if len(part) >= window:
            return max(moves.queue_order(e) for e in part)
    return None


def write(executions: Iterable[JobExecution]) -> None:
    """Store the executions' CHANGED_FIELDS (each execution once)."""
    rows = [
        {"id": e.pk, **{name: getattr(e, name) for name in moves.CHANGED_FIELDS}}
        for e in executions
    ]
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(UPDATE_SQL, [orjson.dumps(rows).decode()])


def as_stored(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with its keys in the order PostgreSQL's jsonb keeps them (shorter keys first,
    then by their bytes): what the service would read back from the row."""
    return dict(
        sorted(document.items(), key=lambda item: (len(item[0].encode()), item[0].encode()))
    )
