"""Writing accepted shadow updates: the one place that turns an accepted update into its rows.

Every path that applies an update — the service (`services.update`, one request), the bridge's
batch (`batch`, many device reports in one transaction) and `batch.set_desired_many` (the
configuration pushing a group) — stages it here with `stage`: the shadow row changes in memory,
and its history row, its replies (`update/accepted`, `update/documents`, `update/delta`, §8.5)
and an AcceptedUpdate for the hooks are queued. `write` then stores them with one statement per
table and runs the hooks, in the caller's transaction.

Hooks (`on_updates`) let other code react to a shadow's accepted updates without leaving the
batched path: a hook registered for a shadow name is called with all the updates of that name
written together — a whole batch at once — inside the transaction that writes them.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.db import connection

from devices.live_events import device_group
from fleetportal import gateways as registered_gateways
from fleetportal import live, outbox, topics
from fleetportal.models import OutboxMessage
from shadows import gateways
from shadows.document import UpdateOutcome
from shadows.models import HistoryOperation, Shadow, ShadowHistory

# A shadow remembers the clientTokens of its last RECENT_TOKENS updates (services: repeats).
RECENT_TOKENS = 16

# One statement per table. The rows travel as ONE JSON document (made by orjson in C) that
# json_to_recordset turns back into rows, in order: psycopg's array dumpers spent a sixth of the
# bridge's time in Python, and executemany ran one statement per row. A `json` column of the
# record keeps its text exactly, so an outbox payload is stored as orjson wrote it.
UPDATE_SQL = (
    f"UPDATE {Shadow._meta.db_table} AS s SET desired_state = v.desired, "  # noqa: S608
    "reported_state = v.reported, metadata = v.metadata, version = v.version, "
    "last_client_token = v.token, recent_client_tokens = v.tokens, updated_at = v.updated_at, "
    "gateway_version = v.gateway_version, live = true, deleted_at = NULL "
    "FROM json_to_recordset(%s::json) AS v(id uuid, desired jsonb, reported jsonb, "
    "metadata jsonb, version int, token text, tokens jsonb, updated_at timestamptz, "
    "gateway_version bigint) "
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


@dataclass(frozen=True)
class AcceptedUpdate:
    """One accepted update of a shadow as its hooks see it: the state right after it."""

    device_id: str  # the device's device_id (its MQTT name)
    device_pk: Any
    name: str  # "" for the classic shadow
    desired: dict[str, Any]
    reported: dict[str, Any]
    change: dict[str, Any] | None  # the request's state, as sent (None: `"state": null`)
    version: int
    at: datetime


UpdatesHook = Callable[[list[AcceptedUpdate]], None]
_hooks: dict[str, list[UpdatesHook]] = {}


def on_updates(name: str, hook: UpdatesHook) -> None:
    """Call `hook(updates)` with the accepted updates of shadows named `name`, in order, each
    time they are written: once per bridge batch (or per flush of it), once per service update.
    It runs inside the writing transaction, after the rows are stored, so what it writes
    commits or rolls back with them; one query per call keeps the batch's cost flat."""
    hooks = _hooks.setdefault(name, [])
    if hook not in hooks:
        hooks.append(hook)


@dataclass
class Writes:
    """Accepted updates staged and not written yet."""

    dirty: dict = field(default_factory=dict)  # pk -> the shadow row as changed in memory
    history: list[dict] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)
    accepted: list[AcceptedUpdate] = field(default_factory=list)
    # Changes of devices on another gateway, handed to its door instead of replies (gateways).
    delegated: dict[str, list[gateways.ShadowChange]] = field(default_factory=dict)


def remember_token(row: Shadow, token: str | None) -> None:
    """Note an accepted update's clientToken on its shadow (repeats are recognised by it)."""
    row.last_client_token = token or ""
    if token:
        tokens = [t for t in row.recent_client_tokens or [] if t != token]
        row.recent_client_tokens = [*tokens, token][-RECENT_TOKENS:]


def stage(
    writes: Writes,
    row: Shadow,
    change: dict[str, Any] | None,
    outcome: UpdateOutcome,
    *,
    token: str | None,
    now: datetime,
    actor: str,
    device_id: str,
    gateway: str = registered_gateways.MOSQUITTO,
) -> None:
    """Apply an accepted outcome to `row` in memory and queue its row, history and replies (or,
    for a device on a gateway with a door, the change for that gateway: shadows.gateways)."""
    shadow = outcome.shadow
    row.desired_state = shadow.state.get("desired", {})
    row.reported_state = shadow.state.get("reported", {})
    row.metadata = shadow.metadata
    row.version = shadow.version
    row.live, row.deleted_at = True, None
    remember_token(row, token)
    row.updated_at = now
    _stage_row(writes, row, change, actor=actor, token=token, now=now)
    if gateways.delivers(gateway):
        writes.delegated.setdefault(gateway, []).append(
            gateways.ShadowChange(
                row.device_id, device_id, row.pk, row.name, change, row.version, now
            )
        )
    else:
        _stage_replies(writes, row, outcome, device_id=device_id, now=now)
    _stage_hooks(writes, row, change, device_id=device_id, now=now)
    notify_after_commit(row, device_id)


def stage_mirrored(
    writes: Writes,
    row: Shadow,
    document: dict[str, Any],
    *,
    version: int,
    now: datetime,
    actor: str,
    device_id: str,
) -> None:
    """Take a gateway's own document of the shadow (state, metadata; shadows.mirror) as its
    state at `version`: no replies (the gateway sent its own), the hooks as for an update."""
    state = document.get("state") or {}
    row.desired_state = state.get("desired") or {}
    row.reported_state = state.get("reported") or {}
    row.metadata = document.get("metadata") or {}
    row.version = row.gateway_version = version
    row.live, row.deleted_at, row.updated_at = True, None, now
    _stage_row(writes, row, state, actor=actor, token=None, now=now)
    _stage_hooks(writes, row, state, device_id=device_id, now=now)
    notify_after_commit(row, device_id)


def _stage_row(
    writes: Writes,
    row: Shadow,
    change: dict[str, Any] | None,
    *,
    actor: str,
    token: str | None,
    now: datetime,
) -> None:
    writes.dirty[row.pk] = row
    writes.history.append(
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


def _stage_replies(
    writes: Writes, row: Shadow, outcome: UpdateOutcome, *, device_id: str, now: datetime
) -> None:
    for reply, body in (
        ("accepted", outcome.accepted),
        ("documents", outcome.documents),
        ("delta", outcome.delta),
    ):
        if body is not None:
            topic = topics.shadow_topic(device_id, row.name, "update", reply)
            writes.replies.append(
                {"topic": topic, "payload": body, "device_id": device_id, "created_at": now}
            )


def _stage_hooks(
    writes: Writes, row: Shadow, change: dict[str, Any] | None, *, device_id: str, now: datetime
) -> None:
    if row.name in _hooks:
        writes.accepted.append(
            AcceptedUpdate(
                device_id,
                row.device_id,
                row.name,
                row.desired_state,
                row.reported_state,
                change,
                row.version,
                now,
            )
        )


def write(writes: Writes) -> None:
    """Store what is staged (one statement per table, in staging order), then run the hooks.

    Replies wake the publisher through `outbox.notify_unless_deferred`: inside the bridge's
    outbox.one_notify block that only marks the batch as having queued something."""
    # Server-side parameter binding: Django's cursors bind on the client, quoting every JSON
    # document into the SQL text in Python — a fifth of the bridge's time at a steady load.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        for sql, rows in (
            (UPDATE_SQL, list(writes.dirty.values())),
            (HISTORY_SQL, writes.history),
            (OUTBOX_SQL, writes.replies),
        ):
            if rows:
                cursor.execute(sql, [orjson.dumps(rows, default=_row_of).decode()])
    if writes.replies:
        outbox.notify_unless_deferred()
    accepted, delegated = writes.accepted, writes.delegated
    writes.dirty, writes.history, writes.replies, writes.accepted = {}, [], [], []
    writes.delegated = {}
    for gateway, changes in delegated.items():
        gateways.deliver(gateway, changes)
    _run_hooks(accepted)


def _run_hooks(accepted: list[AcceptedUpdate]) -> None:
    by_name: dict[str, list[AcceptedUpdate]] = defaultdict(list)
    for update in accepted:
        by_name[update.name].append(update)
    for name, updates in by_name.items():
        for hook in _hooks.get(name, ()):
            hook(updates)


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
        "gateway_version": row.gateway_version,
    }


def notify_after_commit(row: Shadow, device_id: str) -> None:
    """Live pages: a small event to the device's channel-layer group once the change commits.

    Coalesced by fleetportal.live: the bridge sends at most one per shadow per batch. Best
    effort: a channel layer that is down is logged, never fails the shadow change."""
    event = {
        "type": "shadow.changed",
        "device_id": device_id,
        "name": row.name,
        "version": row.version,
        "live": row.live,
    }
    live.emit(device_group(row.device_id), row.name, event)
