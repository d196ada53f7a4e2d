"""The bridge's outbound side: outbox rows → QoS 1 publishes → rows deleted after PUBACK.

Services write OutboxMessage rows in their own transaction (fleetportal.outbox.send) and NOTIFY
at commit. The publisher LISTENs on its own psycopg connection, claims the oldest rows with
`FOR UPDATE SKIP LOCKED` (so several publishers never send the same row), publishes them in id
order, and deletes each once the broker acknowledged it — all in one transaction, so a crash or
a broker outage leaves the rows to be sent again (at least once, order by id kept). It also polls,
in case a NOTIFY was missed while it was disconnected.
"""

import logging
import threading
import time

import psycopg
from django.db import connections

from fleetportal.bridge.partitions import SINGLE, Partition, partition_sql
from fleetportal.bridge.transport import Connection
from fleetportal.models import OutboxMessage
from fleetportal.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

PUBLISHER_CLIENT_ID = SINGLE.publisher_client_id
BATCH_SIZE = 200
POLL_SECONDS = 2.0
PUBACK_TIMEOUT = 10.0  # seconds


class Publisher:
    def __init__(
        self,
        connection: Connection | None = None,
        *,
        client_id: str | None = None,
        batch_size: int = BATCH_SIZE,
        poll_seconds: float = POLL_SECONDS,
        partition: Partition = SINGLE,
    ):
        # Nothing is ever received on this connection, so it needs no persistent session. No
        # in-flight cap: a whole batch goes out at once, and with a cap paho scans every message
        # still unacknowledged on each PUBACK (a tenth of the publisher's time).
        self.connection = connection or Connection(
            client_id or partition.publisher_client_id, clean_session=True, max_inflight=0
        )
        # Several publishers: each claims only its partition's rows, so one device's messages
        # are all sent by one publisher, in id order (rows naming no device: partition 0).
        self.claim_filter = (
            f"WHERE {partition_sql('device_id', partition.count)} = {partition.index} "
            if partition.partitioned
            else ""
        )
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.published = 0
        self._db: psycopg.Connection | None = None

    def run(self, stop: threading.Event) -> None:
        """Publish pending rows whenever woken (NOTIFY) or every poll_seconds, until stop."""
        self.connection.connect(wait=False)
        try:
            while not stop.is_set():
                if not self.connection.wait_connected(timeout=0.5):
                    continue
                try:
                    if self.publish_pending() < self.batch_size:
                        self._wait_for_notify(stop)
                except psycopg.Error as exc:
                    log.warning("outbox: database error (%s); reconnecting", exc)
                    self._close_db()
                    stop.wait(1.0)
        finally:
            self.connection.close()
            self._close_db()

    def publish_pending(self) -> int:
        """One batch: claim, publish, await PUBACKs, delete the acknowledged rows; the count."""
        conn = self._database()
        with conn.transaction(), conn.cursor() as cursor:
            # Forgetting a delete in a crash only means sending those rows again (at least once
            # is the contract), so this commit need not wait for the WAL flush (§7.14).
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(
                f"SELECT id, topic, payload, qos FROM {OutboxMessage._meta.db_table} "  # noqa: S608
                f"{self.claim_filter}ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                [self.batch_size],
            )
            rows = cursor.fetchall()
            deliveries = [
                (row_id, self.connection.publish(topic, bytes(payload), qos))
                for row_id, topic, payload, qos in rows
            ]
            # One deadline for the batch: a broker that died mid-batch costs PUBACK_TIMEOUT once.
            deadline = time.monotonic() + PUBACK_TIMEOUT
            if deliveries:
                # The broker acknowledges in order: once the last is, the others mostly are, so
                # this thread wakes once per batch rather than once per PUBACK.
                deliveries[-1][1].wait(PUBACK_TIMEOUT)
            sent = [
                row_id
                for row_id, delivery in deliveries
                if delivery.wait(max(0.0, deadline - time.monotonic()))
            ]
            if sent:
                cursor.execute(
                    f"DELETE FROM {OutboxMessage._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608
                    [sent],
                )
        if len(sent) < len(rows):
            log.warning(
                "outbox: %d of %d messages unconfirmed; kept", len(rows) - len(sent), len(rows)
            )
        self.published += len(sent)
        return len(sent)

    def _wait_for_notify(self, stop: threading.Event) -> None:
        # Returns on the first NOTIFY or after poll_seconds, whichever comes first.
        for _ in self._database().notifies(timeout=self.poll_seconds, stop_after=1):
            pass

    def _database(self) -> psycopg.Connection:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(**connection_params(), autocommit=True)
            self._db.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return self._db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def connection_params() -> dict:
    """psycopg.connect() arguments for Django's default database (the test database in tests)."""
    settings = connections["default"].settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings.get("USER") or None,
        "password": settings.get("PASSWORD") or None,
        "host": settings.get("HOST") or None,
        "port": settings.get("PORT") or None,
    }
    options = {k: v for k, v in (settings.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
    return {k: v for k, v in {**params, **options}.items() if v is not None}
