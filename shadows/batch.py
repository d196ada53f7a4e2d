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
from fleetportal import gateways, outbox, topics
from fleetportal.bridge import router
from shadows import services, writes
from shadows.document import (
    ShadowError,
    client_token_of,
    parse_request,
    validate_update,
)
from shadows.models import Shadow

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
    staged: writes.Writes = field(default_factory=writes.Writes)


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
    """Write what the batch has applied in memory (in arrival order); the cache stays valid.

    The bridge's outbox.one_notify block sends the batch's one NOTIFY."""
    pending = _pending()
    if pending is not None:
        writes.write(pending.staged)


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
        outcome = services.outcome_of(row, request, now)
    except ShadowError:
        return False  # the service refuses it the same way, with the rejected reply
    actor = f"device:{device_id}"
    writes.stage(
        pending.staged,
        row,
        request.state,
        outcome,
        token=token,
        now=now,
        actor=actor,
        device_id=device_id,
    )
    return True


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
        staged = writes.Writes()
        for device, patch in patches:
            row = rows[device.pk]
            try:
                request = validate_update({"state": {"desired": patch}})
                outcome = services.outcome_of(row, request, now)
            except ShadowError as exc:
                refused[device.pk] = exc
                continue
            writes.stage(
                staged,
                row,
                request.state,
                outcome,
                token=None,
                now=now,
                actor=actor,
                device_id=device.device_id,
                gateway=gateways.of(device),
            )
        with outbox.one_notify():
            writes.write(staged)
        # A refused first update leaves no shadow: drop the fresh rows made above for them.
        Shadow.objects.filter(
            pk__in=[rows[pk].pk for pk in refused], live=False, version=0, deleted_at=None
        ).delete()
    return refused
