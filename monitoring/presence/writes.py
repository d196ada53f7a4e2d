"""Presence changes written set-based: per bridge batch (router.on_batch), or at once outside one.

Handlers only `record(device_id, signal)`; `flush` then, for everything the batch recorded:
1. one SELECT loads the devices and their presence rows (presence rows locked, in device order),
2. the pure rules (`transitions.apply`) run in memory, in arrival order,
3. one upsert writes the changed presence rows, one INSERT their device_online/offline events,
   one COPY the AWS lifecycle events into the outbox —
so a batch costs at most four statements whatever the number of lines. Live events go to each
changed device's live group (fleetportal.live drops groups nobody watches).

Messages from devices this process knows to be online skip all of it (`heard`): the cache keeps a
device for PRESENCE_RECHECK_SECONDS after it was seen online, and a device going offline here
leaves it at once.
"""

import threading
import time
from collections.abc import Iterable
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction

from devices.choices import DeviceStatus
from devices.models import Device, DeviceEvent
from fleetportal import live, outbox
from fleetportal.bridge import router
from monitoring.models.presence import Presence
from monitoring.presence import lifecycle
from monitoring.presence.choices import OFFLINE_EVENT, ONLINE_EVENT, PresenceReason
from monitoring.presence.transitions import (
    Change,
    Connected,
    Disconnected,
    Heard,
    Signal,
    State,
    apply,
)
from shadows.writes import device_group

PRESENCE_KIND = "device:presence"  # devices/<id>/presence (fleetportal.topics.parse)

_batch = threading.local()  # .signals: [(device_id, Signal)] while a bridge batch runs
_known_online: dict[str, float] = {}
clock = time.monotonic

_PRESENCE = Presence._meta.db_table
_STATE_COLUMNS = (
    "online, changed_at, connection, connection_started, connections, connected_at, "
    "disconnected_at, reason"
)
_LOAD_SQL = (
    f"SELECT d.id, d.device_id, p.{_STATE_COLUMNS.replace(', ', ', p.')}, {{principal}} "  # noqa: S608
    f"FROM {Device._meta.db_table} d LEFT JOIN LATERAL "
    f"(SELECT * FROM {_PRESENCE} x WHERE x.device_id = d.id FOR UPDATE) p ON true "
    "WHERE d.device_id = ANY(%s) AND d.status <> %s ORDER BY d.id"
)
# The certificate a lifecycle event names (AWS: principalIdentifier = the certificate id).
_PRINCIPAL = (
    "(SELECT c.fingerprint FROM devices_devicecredential c WHERE c.device_id = d.id "
    "AND c.status = 'active' ORDER BY c.created_at DESC LIMIT 1)"
)
_UPSERT_SQL = (
    f"INSERT INTO {_PRESENCE} (device_id, {_STATE_COLUMNS}) "  # noqa: S608
    "SELECT * FROM unnest(%s::uuid[], %s::bool[], %s::timestamptz[], %s::text[], "
    "%s::timestamptz[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::text[]) "
    "ON CONFLICT (device_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _STATE_COLUMNS.split(", "))
)
_EVENTS_SQL = (
    f"INSERT INTO {DeviceEvent._meta.db_table} "  # noqa: S608
    "(device_id, event_type, event_data, actor, created_at) "
    "SELECT * FROM unnest(%s::uuid[], %s::text[], %s::jsonb[], %s::text[], %s::timestamptz[])"
)
# What the device did itself; the rest the broker or the portal decided.
_BY_DEVICE = {
    PresenceReason.CONNECTED,
    PresenceReason.MESSAGE,
    PresenceReason.STATE_ONLINE,
    PresenceReason.STATE_OFFLINE,
    PresenceReason.CLIENT_DISCONNECT,
    PresenceReason.CONNECTION_CLOSED,
}


def record(device_id: str, signal: Signal) -> None:
    """Queue a signal for the batch's flush; outside a bridge batch, write it now."""
    signals = getattr(_batch, "signals", None)
    if signals is None:
        write([(device_id, signal)])
    else:
        signals.append((device_id, signal))


def heard(message: router.InboundMessage) -> None:
    """router.on_device_message: a message from a device marked offline brings it online."""
    if message.route.kind == PRESENCE_KIND:
        return  # the announcement itself decides (a will must not first bring it online)
    seen = _known_online.get(message.device_id)
    if seen is not None and clock() - seen < settings.PRESENCE_RECHECK_SECONDS:
        return
    record(message.device_id, Heard(message.received_at))


def begin(messages) -> None:
    _batch.signals = []


def flush() -> None:
    signals = getattr(_batch, "signals", None)
    if signals:
        write(signals)
        signals.clear()


def end() -> None:
    _batch.signals = None


def write(signals: list[tuple[str, Signal]]) -> None:
    """Apply `signals` in order to the presence of the devices they name (four statements)."""
    with_principal = any(isinstance(s, Connected | Disconnected) for _, s in signals)
    loaded = _load({device_id for device_id, _ in signals}, with_principal)
    grace = timedelta(seconds=settings.PRESENCE_WILL_GRACE_SECONDS)
    changed: dict[str, State] = {}
    events, messages = [], []
    for device_id, signal in signals:
        if device_id not in loaded:
            continue  # unknown or decommissioned
        pk, state, principal = loaded[device_id]
        change = apply(changed.get(device_id, state), signal, will_grace=grace)
        if change.state == changed.get(device_id, state):
            continue
        changed[device_id] = change.state
        if change.flipped:
            events.append(_event(pk, change))
        if change.lifecycle:
            messages.append(lifecycle.message(device_id, change, signal, principal))
    _save({loaded[d][0]: s for d, s in changed.items()}, events, messages)
    _after_commit(loaded, changed)


def _load(device_ids: Iterable[str], with_principal: bool) -> dict:
    sql = _LOAD_SQL.format(principal=_PRINCIPAL if with_principal else "NULL")
    with _cursor() as cursor:
        cursor.execute(sql, [list(device_ids), DeviceStatus.DECOMMISSIONED.value])
        rows = cursor.fetchall()
    loaded = {}
    for pk, device_id, online, *rest, principal in rows:
        state = State() if online is None else State(online, *rest)
        loaded[device_id] = (pk, state, principal or "")
    return loaded


def _event(pk, change: Change) -> tuple:
    state = change.state
    data = {"reason": state.reason, "connection": state.connection}
    actor = "device" if state.reason in _BY_DEVICE else "system"
    event_type = ONLINE_EVENT if state.online else OFFLINE_EVENT
    return (pk, event_type, orjson.dumps(data).decode(), actor, state.changed_at)


def _save(states: dict, events: list[tuple], messages: list[tuple]) -> None:
    if states:
        columns = [list(states)] + [list(c) for c in zip(*map(_row, states.values()), strict=True)]
        with _cursor() as cursor:
            cursor.execute(_UPSERT_SQL, columns)
    if events:
        with _cursor() as cursor:
            cursor.execute(_EVENTS_SQL, [list(c) for c in zip(*events, strict=True)])
    outbox.send_many(messages)


def _row(state: State) -> tuple:
    return (
        state.online,
        state.changed_at,
        state.connection,
        state.connection_started,
        state.connections,
        state.connected_at,
        state.disconnected_at,
        state.reason,
    )


def _after_commit(loaded: dict, changed: dict[str, State]) -> None:
    for device_id, state in changed.items():
        live.emit(
            device_group(loaded[device_id][0]),
            "presence",
            {"type": "presence.changed", "device_id": device_id, "online": state.online},
        )
    online = [d for d, (_, s, _) in loaded.items() if changed.get(d, s).online]
    offline = [d for d in loaded if d not in online]
    now = clock()

    def remember() -> None:
        _known_online.update(dict.fromkeys(online, now))
        for device_id in offline:
            _known_online.pop(device_id, None)

    transaction.on_commit(remember)
    for device_id in offline:  # at once too: a rolled-back offline must be re-checked
        _known_online.pop(device_id, None)


def forget(device_ids: Iterable[str] | None = None) -> None:
    """Drop what this process believes is online (the sweep's changes, tests)."""
    if device_ids is None:
        _known_online.clear()
    for device_id in device_ids or ():
        _known_online.pop(device_id, None)


def _cursor():
    return connection.cursor()
