"""The bridge's inbound side: broker → router → one transaction → commit → ack.

The contract (architecture.md §3): a message is acknowledged only after the transaction its
handler ran in has committed, so a crash before the commit means the broker redelivers it, and
handlers are idempotent. `process` handles one message per transaction; batching many messages
into one transaction (issue 4) replaces `process` with a loop over `Runner.messages` that commits
a batch and then acks each of its messages — the rest stays as is.
"""

import logging
import queue
import threading

from django import db
from django.db import transaction

from fleetportal import topics
from fleetportal.bridge import router
from fleetportal.bridge.transport import Connection, Received

log = logging.getLogger(__name__)

# Not a valid device_id ('.'), so no device certificate can take over the bridge's session.
BRIDGE_CLIENT_ID = "fleetportal.bridge"
# A database that answers but fails the same message this often is treated as a poison message.
MAX_DATABASE_ATTEMPTS = 5
RETRY_MAX_SECONDS = 5.0


class Runner:
    """Consumes the router's subscriptions on one persistent session and dispatches each message."""

    def __init__(self, connection: Connection | None = None, *, client_id: str = BRIDGE_CLIENT_ID):
        self.connection = connection or Connection(client_id, clean_session=False)
        self.processed = 0

    def run(self, stop: threading.Event) -> None:
        """Connect, subscribe and process messages until `stop` is set."""
        self.connection.subscribe(router.subscriptions())
        self.connection.connect(wait=False)
        try:
            while not stop.is_set():
                try:
                    received = self.connection.messages.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.process(received, stop)
        finally:
            self.connection.close()
            db.connection.close()

    def process(self, received: Received, stop: threading.Event | None = None) -> None:
        """Dispatch one message in its own transaction; ack unless the database failed."""
        route = topics.parse(received.topic)
        if route is None:
            log.warning("bridge: no route for %s; dropped", received.topic)
        elif not self._commit(router.InboundMessage(received.topic, received.payload, route), stop):
            return  # stopping while the database is down: the broker will redeliver it
        self.connection.ack(received)
        self.processed += 1

    def _commit(self, message: router.InboundMessage, stop: threading.Event | None) -> bool:
        """Run the handler until it commits or fails for a reason other than the database."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with transaction.atomic():
                    if not router.dispatch(message):
                        log.warning("bridge: no handler for %s; dropped", message.topic)
                return True
            except (db.OperationalError, db.InterfaceError) as exc:
                db.connection.close()  # the next attempt reconnects
                if attempt >= MAX_DATABASE_ATTEMPTS and _database_answers():
                    log.exception("bridge: %s failed %d times; dropped", message.topic, attempt)
                    return True
                log.warning("bridge: database error on %s (%s); retrying", message.topic, exc)
                if (stop or threading.Event()).wait(min(0.1 * 2**attempt, RETRY_MAX_SECONDS)):
                    return False
            except Exception:
                # A bug in a handler: rolled back, logged and acked, so one poison message
                # cannot block the bridge forever.
                log.exception("bridge: handler for %s failed; dropped", message.topic)
                return True


def _database_answers() -> bool:
    try:
        with db.connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except db.Error:
        db.connection.close()
        return False


def run_forever(stop: threading.Event, *, publisher: bool = True) -> None:
    """`manage.py runbridge`: the runner in this thread, the outbox publisher in another."""
    from fleetportal.bridge.publisher import Publisher

    threads = []
    if publisher:
        out = Publisher()
        threads.append(threading.Thread(target=out.run, args=(stop,), name="outbox", daemon=True))
    for thread in threads:
        thread.start()
    try:
        Runner().run(stop)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
