"""last_seen without a database write per message: at most one UPDATE per device per 30 s, and
in the bridge's batches one UPDATE for all the devices a batch brings news of.

A router.on_device_message hook (registered with the presence handlers) keeps, in process
memory, when each device's last_seen was last written; messages inside the window only read the
dict. The time is remembered once the bridge's transaction commits, so a rolled-back write is
retried by the next message. Each bridge process has its own cache: with N bridges a device is
written at most N times per window (a device's messages go to one bridge, so usually once).

Inside a bridge batch (router.on_batch) the devices due a write are collected and written with
one statement when the batch flushes: a fleet whose devices each speak less often than every
30 s would otherwise cost one UPDATE per message.
"""

import threading
import time
from datetime import datetime

import psycopg
from django.db import connection, transaction

from devices.choices import DeviceStatus
from devices.models import Device

WINDOW_SECONDS = 30.0
_written: dict[str, float] = {}
clock = time.monotonic

_batch = threading.local()  # .due: device_id -> when seen, while a bridge batch is open

# The rows in device_id order: one lock order for every writer.
BATCH_SQL = (
    f"UPDATE {Device._meta.db_table} AS d SET last_seen = v.at "  # noqa: S608
    "FROM (SELECT * FROM unnest(%s::text[], %s::timestamptz[]) AS u(device_id, at) "
    "ORDER BY device_id) AS v "
    "WHERE d.device_id = v.device_id AND d.status <> %s"
)


def touch(message) -> None:
    """Record that `message.device_id` was seen at `message.received_at` (coalesced)."""
    seen(message.device_id, message.received_at)


def seen(device_id: str, at: datetime, ip_address: str | None = None) -> None:
    """Record a sign of life (an MQTT message, an HTTP device API request), coalesced.

    Mosquitto does not tell the bridge a client's address, so only the HTTP device API passes
    `ip_address`.
    """
    now = clock()
    last = _written.get(device_id)
    if last is not None and now - last < WINDOW_SECONDS:
        return
    due = getattr(_batch, "due", None)
    if due is not None and ip_address is None:
        due[device_id] = at  # written by flush(), with the rest of the batch
        return
    changes = (
        {"last_seen": at}
        if ip_address is None
        else {"last_seen": at, "last_ip_address": ip_address}
    )
    Device.objects.filter(device_id=device_id).exclude(status=DeviceStatus.DECOMMISSIONED).update(
        **changes
    )
    transaction.on_commit(lambda: _written.__setitem__(device_id, now))


# --- the bridge's batches (router.on_batch) ------------------------------------------------------


def begin(messages) -> None:
    _batch.due = {}


def flush() -> None:
    """Write last_seen of every device the batch has seen so far (one statement)."""
    due = getattr(_batch, "due", None)
    if not due:
        return
    device_ids = list(due)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            BATCH_SQL, [device_ids, list(due.values()), DeviceStatus.DECOMMISSIONED.value]
        )
    due.clear()
    now = clock()

    def remember() -> None:
        for device_id in device_ids:
            _written[device_id] = now

    transaction.on_commit(remember)


def end() -> None:
    _batch.due = None


def forget() -> None:
    _written.clear()
