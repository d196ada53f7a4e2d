"""Shadow updates in the bridge's batches: one SELECT, one UPDATE and two INSERTs per batch.

The bridge handles up to a few hundred messages in one transaction (fleetportal.bridge.runner).
Done one by one, each update costs about six queries (savepoint, lock, update, history, outbox,
release). Here, when a batch begins, every shadow its updates name is locked and loaded with
one query; each update that takes the common path — the shadow exists and is live, the device
is not decommissioned, the request is valid, not a possible replay — is applied in memory with
the same pure functions (shadows.document) and its row change, history row and replies are
queued; `flush` writes them all with bulk statements, in arrival order, before the commit.

Anything else — a get or delete, a refusal, a new shadow, a redelivered or repeated
clientToken — first flushes what is queued, then goes through shadows.services as before (its
own atomic block), and the shadow is dropped from the batch's cache so the next update reads it
again. So the results, replies and their order are exactly those of one-by-one processing.
"""

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import set_json_loads

from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal import outbox, topics
from fleetportal.bridge import router
from fleetportal.models import OutboxMessage
from shadows import services
from shadows.document import (
    ShadowError,
    apply_update,
    client_token_of,
    parse_request,
    validate_update,
)
from shadows.models import HistoryOperation, Shadow, ShadowHistory

# One statement per table and batch. The rows travel as ONE JSON document (made by orjson in C)
# that json_to_recordset turns back into rows, in order: psycopg's array dumpers spent a sixth
# of the runner's time in Python, and executemany ran one statement per row. A `json` column
# of the record keeps its text exactly, so an outbox payload is stored as orjson wrote it.
UPDATE_SQL = (
    f"UPDATE {Shadow._meta.db_table} AS s SET desired_state = v.desired, "  # noqa: S608
    "reported_state = v.reported, metadata = v.metadata, version = v.version, "
    "last_client_token = v.token, recent_client_tokens = v.tokens, updated_at = v.updated_at, "
    "live = true, deleted_at = NULL "
    "FROM json_to_recordset(%s::json) AS v(id uuid, desired jsonb, reported jsonb, "
    "metadata jsonb, version int, token text, tokens jsonb, updated_at timestamptz) "
    "WHERE s.id = v.id"
)
HISTORY_SQL = (
    f"INSERT INTO {ShadowHistory._meta.db_table} "  # noqa: S608
    "(shadow_id, version, operation, state, change, actor, client_token, created_at) "
    "SELECT shadow_id, version, operation, state, change, actor, client_token, created_at "
    "FROM ROWS FROM (json_to_recordset(%s::json) AS (shadow_id uuid, version int, "
    "operation text, state jsonb, change jsonb, actor text, client_token text, "
    "created_at timestamptz)) WITH ORDINALITY "
    "AS v(shadow_id, version, operation, state, change, actor, client_token, created_at, n) "
    "ORDER BY n"
)
# In arrival order: the outbox ids are the publishing order of each device's replies.
OUTBOX_SQL = (
    f"INSERT INTO {OutboxMessage._meta.db_table} "  # noqa: S608
    "(topic, payload, qos, device_id, created_at) "
    "SELECT topic, convert_to(payload::text, 'UTF8'), 1, device_id, created_at "
    "FROM ROWS FROM (json_to_recordset(%s::json) AS (topic text, payload json, "
    "device_id text, created_at timestamptz)) WITH ORDINALITY "
    "AS v(topic, payload, device_id, created_at, n) ORDER BY n"
)
# Lock and load: every shadow a batch names, with the device fields the fast path reads, in
# one lock order for every bridge (no deadlocks between them).
SHADOW_COLUMNS = [f.column for f in Shadow._meta.concrete_fields]
SHADOW_ATTNAMES = [f.attname for f in Shadow._meta.concrete_fields]
LOCK_SQL = (
    f"SELECT {', '.join(f's.{column}' for column in SHADOW_COLUMNS)}, "  # noqa: S608
    f"d.device_id, d.status FROM {Shadow._meta.db_table} AS s "
    f"JOIN {Device._meta.db_table} AS d ON d.id = s.device_id "
    "WHERE d.device_id = ANY(%s) AND s.name = ANY(%s) ORDER BY s.id FOR UPDATE OF s"
)

_state = threading.local()


@dataclass
class Pending:
    # The shadows the in-memory path may change: locked by this transaction, live, of a device
    # that is not decommissioned, as changed in memory.
    rows: dict[tuple[str, str], Shadow]
    # Shadows the service changed (or may have) since they were loaded: read again when the
    # batch has another update for them.
    stale: set[tuple[str, str]] = field(default_factory=set)
    dirty: dict = field(default_factory=dict)  # pk -> row
    history: list[dict] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)


def _pending() -> Pending | None:
    return getattr(_state, "pending", None)


def begin(messages: list[router.InboundMessage]) -> None:
    """Lock and load, in one query, the shadows this batch's updates name."""
    kind = topics.shadow_kind("update")
    keys = {(m.device_id, m.route.name) for m in messages if m.route.kind == kind}
    _state.pending = Pending(_lock_and_load(keys)) if keys else None


def _lock_and_load(keys: set[tuple[str, str]]) -> dict[tuple[str, str], Shadow]:
    device_ids = sorted({d for d, _ in keys})
    names = sorted({n for _, n in keys})
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        # Django reads jsonb as text and parses it in the field; here orjson parses it at once.
        set_json_loads(orjson.loads, cursor)
        cursor.execute(LOCK_SQL, [device_ids, names])
        rows = cursor.fetchall()
    loaded = {}
    for *values, device_id, status in rows:
        row = Shadow.from_db(connection.alias, SHADOW_ATTNAMES, values)
        if (device_id, row.name) in keys and row.live and status != DeviceStatus.DECOMMISSIONED:
            loaded[(device_id, row.name)] = row
    return loaded


def flush() -> None:
    """Write what the batch has applied in memory (in arrival order); the cache stays valid."""
    pending = _pending()
    if pending is not None:
        _write(pending)


def _write(pending: Pending) -> None:
    # Server-side parameter binding: Django's cursors bind on the client, quoting every JSON
    # document into the SQL text in Python — a fifth of the runner's time at a steady load.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        for sql, rows in (
            (UPDATE_SQL, list(pending.dirty.values())),
            (HISTORY_SQL, pending.history),
            # The bridge's one_notify() sends the NOTIFY for the whole batch.
            (OUTBOX_SQL, pending.replies),
        ):
            if rows:
                cursor.execute(sql, [orjson.dumps(rows, default=_row_of).decode()])
    pending.dirty.clear()
    pending.history.clear()
    pending.replies.clear()


def _row_of(row: Shadow) -> dict:
    return {
        "id": row.pk,
        "desired": row.desired_state,
        "reported": row.reported_state,
        "metadata": row.metadata,
        "version": row.version,
        "token": row.last_client_token,
        "tokens": row.recent_client_tokens,
        "updated_at": row.updated_at,
    }


def invalidate() -> None:
    """Flush, then forget the cached rows (something else may change them now)."""
    flush()
    pending = _pending()
    if pending is not None:
        pending.stale.update(pending.rows)
        pending.rows.clear()


def end() -> None:
    _state.pending = None


def handle(
    operation: str,
    device_id: str,
    name: str,
    payload: bytes,
    *,
    now: datetime,
    redelivered: bool = False,
) -> None:
    """The MQTT handler's entry point: the in-memory path when it applies, else the service."""
    if operation == "update" and _apply(device_id, name, payload, now, redelivered):
        return
    pending = _pending()
    if pending is not None:
        flush()
        pending.rows.pop((device_id, name), None)
        pending.stale.add((device_id, name))
    services.handle_request(operation, device_id, name, payload, now=now, redelivered=redelivered)


def _apply(device_id: str, name: str, payload: bytes, now: datetime, redelivered: bool) -> bool:
    pending = _pending()
    if pending is None or redelivered:
        return False
    if services.has_update_hooks(name):
        return False  # the service runs the hooks (rare shadows such as `config`)
    row = pending.rows.get((device_id, name))
    if row is None and (device_id, name) in pending.stale:
        # The service handled this shadow earlier in the batch: read it again (one query), or
        # every later update of this shadow in the batch would take the service's path too.
        pending.stale.discard((device_id, name))
        pending.rows.update(_lock_and_load({(device_id, name)}))
        row = pending.rows.get((device_id, name))
    if row is None:
        return False
    try:
        document = parse_request(payload)
        token = client_token_of(document)
        request = validate_update(document)
        services.check_name(name, token)
        if token is not None and token in (row.recent_client_tokens or []):
            return False  # maybe a repeat: the service checks the history
        outcome = apply_update(services.document_of(row), request, services.epoch(now))
    except ShadowError:
        return False  # the service refuses it the same way, with the rejected reply
    _stage(pending, row, request.state, outcome, token, now, f"device:{device_id}", device_id)
    return True


def _stage(pending, row, change, outcome, token, now, actor, device_id) -> None:
    """Apply an accepted outcome to the cached row and queue its row, history and replies."""
    shadow = outcome.shadow
    row.desired_state = shadow.state.get("desired", {})
    row.reported_state = shadow.state.get("reported", {})
    row.metadata = shadow.metadata
    row.version = shadow.version
    row.live, row.deleted_at = True, None
    services.remember_token(row, token)
    row.updated_at = now
    pending.dirty[row.pk] = row
    pending.history.append(
        {
            "shadow_id": row.pk,
            "version": row.version,
            "operation": HistoryOperation.UPDATE.value,
            "state": {"desired": row.desired_state, "reported": row.reported_state},
            "change": change,
            "actor": actor,
            "client_token": token or "",
            "created_at": now,
        }
    )
    for reply, body in (
        ("accepted", outcome.accepted),
        ("documents", outcome.documents),
        ("delta", outcome.delta),
    ):
        if body is not None:
            topic = topics.shadow_topic(device_id, row.name, "update", reply)
            pending.replies.append(
                {"topic": topic, "payload": body, "device_id": device_id, "created_at": now}
            )
    services.notify_after_commit(row, device_id)


def set_desired_many(
    name: str,
    patches: list[tuple[Device, dict[str, Any]]],
    *,
    actor: str,
    now: datetime | None = None,
) -> dict[Any, ShadowError]:
    """Merge a desired patch into shadow `name` of many devices: what services.set_desired does
    for one, with one lock query, one insert for the shadows that do not exist yet and three
    bulk writes for all (the configuration pushes a group's change this way).

    Returns the refusals by device pk (those devices are left unchanged). Runs the shadow's
    update hooks like the service."""
    now = now or timezone.now()
    services.check_name(name)
    refused: dict[Any, ShadowError] = {}
    if not patches:
        return refused
    with transaction.atomic():
        pks = [device.pk for device, _ in patches]
        Shadow.objects.bulk_create(
            [Shadow(device_id=pk, name=name, created_at=now, updated_at=now) for pk in pks],
            ignore_conflicts=True,
        )
        rows = {
            row.device_id: row
            for row in Shadow.objects.select_for_update()
            .filter(device__in=pks, name=name)
            .order_by("pk")
        }
        pending = Pending({})
        for device, patch in patches:
            row = rows[device.pk]
            try:
                request = validate_update({"state": {"desired": patch}})
                current = services.document_of(row) if row.live else None
                recently_deleted = (
                    row.deleted_at is not None and now - row.deleted_at < services.RECREATE_WINDOW
                )
                outcome = apply_update(
                    current,
                    request,
                    services.epoch(now),
                    deleted_version=row.version if current is None and recently_deleted else 0,
                )
            except ShadowError as exc:
                refused[device.pk] = exc
                continue
            _stage(pending, row, request.state, outcome, None, now, actor, device.device_id)
            services.run_update_hooks(row, request.state, now)
        with outbox.one_notify():
            _write(pending)
        # A refused first update leaves no shadow: drop the fresh rows made above for them.
        Shadow.objects.filter(
            pk__in=[rows[pk].pk for pk in refused], live=False, version=0, deleted_at=None
        ).delete()
    return refused
