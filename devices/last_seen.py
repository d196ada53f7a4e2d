"""last_seen without a database write per message: at most one UPDATE per device per 30 s of
its messages' receive times, and in the bridge's batches one UPDATE for all the devices a batch
brings news of.

A router.on_device_message hook (registered with the presence handlers) keeps, in process
memory, the receive time last written for each device; messages received inside the window only
read the dict. The window is counted on the messages' own receive times, not on the clock of the
process writing them: a bridge working through a backlog handles minutes of messages in
seconds, and must still record each device's later messages, because the rollout health check
compares last_seen with the receive time of the device's version report. The time is
remembered once the bridge's transaction commits, so a rolled-back write is retried by the next
message. Each bridge process has its own cache: with N bridges a device is written at most N
times per window (a device's messages go to one bridge, so usually once).

Inside a bridge batch (router.on_batch) the devices due a write are collected and written with
one statement when the batch flushes: a fleet whose devices each speak less often than every
30 s would otherwise cost one UPDATE per message.
"""

import threading
from datetime import datetime, timedelta

import psycopg
from django.db import connection, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest

from devices.choices import DeviceStatus
from devices.models import Device

WINDOW_SECONDS = 30.0
# device_id -> (the receive time last written; the address written or known).
_written: dict[str, tuple[datetime, str | None]] = {}

_batch = threading.local()  # .due: device_id -> (when seen, address or None), in a batch

# The rows in device_id order: one lock order for every writer. An address only where known.
BATCH_SQL = (
    f"UPDATE {Device._meta.db_table} AS d SET last_seen = GREATEST(d.last_seen, v.at), "  # noqa: S608
    "last_ip_address = COALESCE(v.address, d.last_ip_address) "
    "FROM (SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::inet[]) "
    "AS u(device_id, at, address) ORDER BY device_id) AS v "
    "WHERE d.device_id = v.device_id AND d.status <> %s"
)


def touch(message) -> None:
    """Record that `message.device_id` was seen at `message.received_at` (coalesced)."""
    seen(message.device_id, message.received_at)


def seen(device_id: str, at: datetime, ip_address: str | None = None) -> None:
    """Record a sign of life (an MQTT message, an HTTP device API request), coalesced.

    `ip_address` comes from the HTTP device API's requests and from the broker's connection
    log (devices.handlers.connections), once per connection.
    """
    last = _written.get(device_id)
    if last is not None and _inside_window(at, last[0]) and ip_address in (None, last[1]):
        return  # received soon after the time written (or before it), and no new address
    due = getattr(_batch, "due", None)
    if due is not None:
        earlier, known = due.get(device_id, (at, None))
        due[device_id] = (max(at, earlier), ip_address or known)  # written by flush()
        return
    # Never backwards: a connection-log line or a late bridge may bring an older time.
    latest = Greatest(F("last_seen"), Value(at, output_field=DateTimeField()))
    changes: dict[str, object] = {"last_seen": latest}
    if ip_address is not None:
        changes["last_ip_address"] = ip_address
    Device.objects.filter(device_id=device_id).in_service().update(**changes)
    transaction.on_commit(lambda: _remember({device_id: (at, ip_address)}))


def _inside_window(at: datetime, written: datetime) -> bool:
    return at - written < timedelta(seconds=WINDOW_SECONDS)


def _remember(written: dict[str, tuple[datetime, str | None]]) -> None:
    for device_id, (at, address) in written.items():
        earlier, known = _written.get(device_id, (at, None))
        _written[device_id] = (max(at, earlier), address or known)


# --- the bridge's batches (router.on_batch) ------------------------------------------------------


def begin(messages) -> None:
    _batch.due = {}


def flush() -> None:
    """Write last_seen of every device the batch has seen so far (one statement)."""
    due = getattr(_batch, "due", None)
    if not due:
        return
    device_ids = list(due)
    seen_at, addresses = zip(*due.values(), strict=True)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            BATCH_SQL,
            [device_ids, list(seen_at), list(addresses), DeviceStatus.DECOMMISSIONED.value],
        )
    written = dict(zip(device_ids, due.values(), strict=True))
    due.clear()
    transaction.on_commit(lambda: _remember(written))


def end() -> None:
    _batch.due = None


def forget() -> None:
    _written.clear()
