"""The statements of the jobs batch (batch.py): lock and load what a bridge batch's requests
need with one query, and write its changed executions back with one.

Lock and load, for the batch's devices (by device_id):
- the device row (unlocked, as the service reads it);
- its first pending executions in queue order (IN_PROGRESS ones, then QUEUED ones), at most
  the device's window of them — enough for its head, and for its `notify` lists when the batch
  ends executions of it;
- every attempt of the (device, job) pairs the batch's updates name;
- the executions a start-next of the batch started with the token one of the batch's
  start-nexts carries, since `since` (a start-next can repeat only the start-next that started
  an execution, and an older one cannot make a repeat of a message not redelivered);
and the job fields the documents read (plus a firmware job's version fields, for its signed
URL), sent once per job rather than once per row. The rows the batch may change are locked FOR
UPDATE in pk order, the order every writer of executions locks them in, as the service locks
them: the pending executions of a device with a start-next, the executions updates name. The
rest only tells heads and `notify` lists, which the service reads unlocked too.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

import orjson
import psycopg
from django.db import connection
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import set_json_loads

from devices.models import Device
from firmware.choices import ExecutionStatus as S
from firmware.executions import PENDING
from firmware.models import FirmwareVersion, Job, JobExecution
from firmware.protocol import moves

M = TypeVar("M", bound=Model)


def _attnames(model, wanted: Iterable[str]) -> list[str]:
    # Model.from_db takes the loaded fields in the model's field order.
    return [f.attname for f in model._meta.concrete_fields if f.attname in set(wanted)]


# What moves, repeats and firmware.documents read of an execution (the engine's own fields are
# left deferred), of a device, of a job, and of a firmware job's version
# (firmware.jobs.delivered_document).
EXECUTION_ATTNAMES = _attnames(
    JobExecution,
    (
        "id",
        "job_id",
        "device_id",
        "execution_number",
        "queued_at",
        *moves.CHANGED_FIELDS,
    ),
)
DEVICE_ATTNAMES = _attnames(Device, ("id", "device_id", "status"))
JOB_ATTNAMES = _attnames(Job, ("id", "job_id", "document", "firmware_id", "timeout_config"))
FIRMWARE_ATTNAMES = _attnames(FirmwareVersion, ("id", "artifact", "file_url"))

_E, _J = JobExecution._meta.db_table, Job._meta.db_table
_D, _F = Device._meta.db_table, FirmwareVersion._meta.db_table


def _columns(alias: str, names: list[str]) -> str:
    return ", ".join(f"{alias}.{name}" for name in names)


LOAD_SQL = f"""
WITH device AS (
    SELECT {_columns("d", DEVICE_ATTNAMES)}, w.size, w.starts FROM {_D} AS d
    JOIN json_to_recordset(%(devices)s::json) AS w(thing text, size int, starts bool)
        ON d.device_id = w.thing
), window_rows AS (
    -- 'IN_PROGRESS' < 'QUEUED': (status, queued_at, id) is the queue order, and the order of
    -- execution_pending_idx, the one index whose predicate `status IN (…)` implies (the
    -- deadline indexes' `status = 'IN_PROGRESS'` does not), so each device costs one probe.
    SELECT x.*, d.starts FROM device AS d, LATERAL (
        SELECT {_columns("e", EXECUTION_ATTNAMES)} FROM {_E} AS e
        WHERE e.device_id = d.id AND e.status IN ('{S.IN_PROGRESS.value}', '{S.QUEUED.value}')
        ORDER BY e.status, e.queued_at, e.id LIMIT d.size
    ) AS x
), to_lock AS (
    -- What the batch may change, as the service locks it: a start-next's pending rows, an
    -- update's execution. The rest (notify lists, tokens) is read as the service reads it.
    SELECT id FROM window_rows WHERE starts
    UNION
    SELECT e.id FROM {_E} AS e
    JOIN device AS d ON d.id = e.device_id JOIN {_J} AS j ON j.id = e.job_id
    WHERE (d.device_id, j.job_id) IN (
        SELECT thing, job FROM json_to_recordset(%(named)s::json) AS n(thing text, job text))
), locked AS (
    SELECT {", ".join(EXECUTION_ATTNAMES)} FROM {_E}
    WHERE id = ANY(ARRAY(SELECT id FROM to_lock)) ORDER BY id FOR UPDATE  -- by the pk index
), loaded AS (
    SELECT *, true AS locked FROM locked
    UNION ALL
    SELECT {", ".join(EXECUTION_ATTNAMES)}, false FROM window_rows
    WHERE id <> ALL(ARRAY(SELECT id FROM to_lock))
    UNION ALL
    -- A start-next can repeat only the start-next that started an execution: by its token
    -- (execution_start_token_idx), and only one started since `since` can be a repeat of a
    -- message that was not redelivered.
    SELECT {_columns("e", EXECUTION_ATTNAMES)}, false FROM device AS d
    JOIN {_E} AS e ON e.device_id = d.id
    WHERE e.start_token = ANY(ARRAY(SELECT json_array_elements_text(%(tokens)s::json)))
    AND e.start_token <> '' AND e.started_at >= %(since)s AND d.starts
    AND e.id NOT IN (SELECT id FROM to_lock UNION ALL SELECT id FROM window_rows)
)
SELECT {_columns("d", DEVICE_ATTNAMES)}, d.size, w.id IS NOT NULL, l.locked,
       {_columns("l", EXECUTION_ATTNAMES)},
       {_columns("j", JOB_ATTNAMES)}, {_columns("f", FIRMWARE_ATTNAMES)}
FROM device AS d
LEFT JOIN (SELECT *, row_number() OVER (PARTITION BY job_id ORDER BY id) = 1 AS first_of_job
           FROM loaded) AS l ON l.device_id = d.id
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
    "start_token": "text",
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
    # The executions locked FOR UPDATE: the only ones the batch may change.
    locked: set[Any] = field(default_factory=set)

    def first(self, count: int) -> list[JobExecution] | None:
        """The device's first `count` pending executions in queue order (fewer when it has
        fewer), or None when the batch cannot tell them from what it loaded."""
        keyed = [(moves.queue_order(e), e) for e in self.executions if e.status in PENDING]
        if self.frontier is not None:
            keyed = [(key, e) for key, e in keyed if key <= self.frontier]
        if self.frontier is not None and len(keyed) < count:
            return None
        keyed.sort(key=itemgetter(0))
        return [e for _, e in keyed[:count]]

    def find(self, job_id: str, number: int | None) -> JobExecution | None:
        """Its execution of `job_id`: attempt `number`, or the latest (the service's _find)."""
        attempts = [e for e in self.executions if e.job.job_id == job_id]
        if number is not None:
            return next((e for e in attempts if e.execution_number == number), None)
        return max(attempts, key=attrgetter("execution_number")) if attempts else None


def load(
    windows: dict[str, int],
    *,
    named: Iterable[tuple[str, str]],
    tokens: Iterable[str],
    starting: set[str],
    since: datetime,
) -> dict[str, DeviceJobs]:
    """Lock and load (LOAD_SQL) the devices of `windows` (device_id: how many of its first
    pending executions to load); the known ones by device_id."""
    # One JSON document per list: psycopg's array dumpers are Python, orjson is C.
    params = {
        "devices": _json(
            {"thing": thing, "size": size, "starts": thing in starting}
            for thing, size in windows.items()
        ),
        "named": _json({"thing": thing, "job": job_id} for thing, job_id in named),
        "since": since,
        "tokens": _json(tokens),
    }
    connection.ensure_connection()
    # Django's error classes, as for its own cursors: the bridge retries a batch on a
    # database error (django.db.OperationalError), not on psycopg's own.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        # psycopg's own loaders, in C, in binary: Django's timestamptz loader is a Python
        # subclass, and this query returns thousands of timestamps. Same values (UTC).
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        set_json_loads(orjson.loads, cursor)
        cursor.execute(LOAD_SQL, params, binary=True, prepare=True)  # planned once
        return _build(cursor.fetchall())


def _json(values: Iterable) -> str:
    return orjson.dumps(list(values)).decode()


def _build(rows: list[tuple]) -> dict[str, DeviceJobs]:
    alias = connection.alias
    instance = _instances(alias)
    devices: dict[str, DeviceJobs] = {}
    jobs: dict[Any, Job] = {}
    window_rows: dict[str, list[JobExecution]] = {}  # its first pending, per device
    windows: dict[str, int] = {}
    device_end = len(DEVICE_ATTNAMES)
    execution_start = device_end + 3
    execution_end = execution_start + len(EXECUTION_ATTNAMES)
    job_end = execution_end + len(JOB_ATTNAMES)
    thing_at = DEVICE_ATTNAMES.index("device_id")
    for row in rows:
        thing = row[thing_at]
        if thing not in devices:
            device = instance(Device, DEVICE_ATTNAMES, row[:device_end])
            devices[thing] = DeviceJobs(device, [], None)
            window_rows[thing], windows[thing] = [], row[device_end]
        if row[execution_start] is None:
            continue  # a device with nothing loaded
        values = row[execution_start:execution_end]
        execution = instance(JobExecution, EXECUTION_ATTNAMES, values)
        _DEVICE.set_cached_value(execution, devices[thing].device)
        devices[thing].executions.append(execution)
        if row[device_end + 1]:
            window_rows[thing].append(execution)
        if row[device_end + 2]:
            devices[thing].locked.add(execution.pk)
        if row[execution_end] is not None:
            jobs[execution.job_id] = _job(row[execution_end:job_end], row[job_end:], instance)
    for thing, loaded in devices.items():
        for execution in loaded.executions:
            _JOB.set_cached_value(execution, jobs[execution.job_id])
        if len(window_rows[thing]) >= windows[thing]:  # there may be more after them
            # (With no window, nothing is known: every queue order is past the empty tuple.)
            loaded.frontier = max((moves.queue_order(e) for e in window_rows[thing]), default=())
    return devices


_JOB = JobExecution._meta.get_field("job")
_DEVICE = JobExecution._meta.get_field("device")
_FIRMWARE = Job._meta.get_field("firmware")


def _instances(alias: str):
    """What Model.from_db makes of a row, without Model.__init__'s per-field work (a batch
    builds hundreds of rows, and __init__ was most of its time); fields not loaded are deferred
    as from_db leaves them. A model with init signals' receivers gets them, through from_db."""
    signalled: dict[type, bool] = {}

    def instance(model: type[M], attnames: list[str], values: tuple) -> M:
        if model not in signalled:
            signalled[model] = pre_init.has_listeners(model) or post_init.has_listeners(model)
        if signalled[model]:
            return model.from_db(alias, attnames, values)
        made = model.__new__(model)
        made.__dict__.update(zip(attnames, values, strict=True))
        made._state = ModelState()
        made._state.adding = False
        made._state.db = alias
        return made

    return instance


def _job(job_values: tuple, firmware_values: tuple, instance) -> Job:
    job = instance(Job, JOB_ATTNAMES, job_values)
    if job.firmware_id is not None:
        version = instance(FirmwareVersion, FIRMWARE_ATTNAMES, firmware_values)
        _FIRMWARE.set_cached_value(job, version)
    return job


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
