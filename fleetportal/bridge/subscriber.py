"""A partitioned runner's subscriptions: the explicit topics of every device its partition owns.

Runs as a thread beside the runner, on the runner's own connection (paho is thread-safe). It
refreshes the device set when registration NOTIFYs (coverage.DEVICES_CHANNEL) and every
`refresh_seconds` as a fallback (a NOTIFY missed while disconnected), subscribes the new devices
in packets of a few hundred filters, waits for their SUBACKs, and only then records how far it
got (coverage.record), which is what credential issuance waits for. Devices that left the set
(decommissioned) are unsubscribed.

Each refresh reads the partition's whole device set (one indexed-free scan computing md5 per
row: ~tens of ms per 100,000 devices); an incremental query would need a commit-ordered key,
which created_at and the UUID primary key are not.
"""

import logging
import threading
import time

import psycopg
from django import db

from fleetportal import topics
from fleetportal.bridge import coverage, router
from fleetportal.bridge.partitions import Partition
from fleetportal.bridge.publisher import connection_params
from fleetportal.bridge.transport import Connection

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0


def device_filters(device_ids: set[str] | list[str]) -> list[str]:
    """Every device-scoped router filter, narrowed to each of these devices."""
    scoped = [f for f in router.subscriptions() if topics.filter_for_device(f, "x") is not None]
    return [topics.filter_for_device(f, d) for d in sorted(device_ids) for f in scoped]


def shared_filters() -> list[str]:
    """The router filters that name no device (claim, provisioning): partition 0 holds them."""
    return [f for f in router.subscriptions() if topics.filter_for_device(f, "x") is None]


class Subscriber:
    def __init__(
        self,
        connection: Connection,
        partition: Partition,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ):
        self.connection = connection
        self.partition = partition
        self.refresh_seconds = refresh_seconds
        self.subscribed: set[str] = set()
        self.refreshes = 0
        self._listener: psycopg.Connection | None = None

    def run(self, stop: threading.Event) -> None:
        """Refresh on NOTIFY or every refresh_seconds until `stop`."""
        try:
            while not stop.is_set():
                if not self.connection.wait_connected(timeout=0.5):
                    continue
                try:
                    self._listen()
                    if self.refresh():
                        self._wait_for_notify(stop)
                    else:
                        stop.wait(0.5)  # not all SUBACKs (reconnecting): try again soon
                except (psycopg.Error, db.Error) as exc:
                    log.warning("bridge %s: database error (%s); retrying", self.partition, exc)
                    self._close()
                    stop.wait(1.0)
        finally:
            self._close()

    def refresh(self) -> bool:
        """Subscribe new devices, unsubscribe gone ones, then record the coverage; True if done."""
        # Before the device query: every device committed before this moment is in its result.
        covered_at = coverage.database_now()
        owned = coverage.devices_in(self.partition)
        gone, new = self.subscribed - owned, owned - self.subscribed
        if gone:
            self.connection.unsubscribe(device_filters(gone))
            self.subscribed -= gone
        if new:
            if not self.connection.subscribe_confirmed(device_filters(new)):
                return False
            self.subscribed |= new
            log.info("bridge %s: subscribed %d new devices", self.partition, len(new))
        coverage.record(self.partition, covered_at, len(self.subscribed))
        self.refreshes += 1
        return True

    def _wait_for_notify(self, stop: threading.Event) -> None:
        # In slices, so that stop is seen within a second.
        deadline = time.monotonic() + self.refresh_seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            for _ in self._listener.notifies(timeout=min(1.0, left), stop_after=1):
                return

    def _listen(self) -> None:
        if self._listener is None or self._listener.closed:
            self._listener = psycopg.connect(**connection_params(), autocommit=True)
            self._listener.execute(f"LISTEN {coverage.DEVICES_CHANNEL}")

    def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        db.connection.close()
