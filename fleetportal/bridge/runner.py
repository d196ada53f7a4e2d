"""The bridge's inbound side: broker → router → one transaction → commit → ack.

The contract (architecture.md §3): a message is acknowledged only after the transaction its
handler ran in has committed, so a crash before the commit means the broker redelivers it, and
handlers are idempotent.

Under load the runner takes every message already waiting (up to `batch_size`) and handles them
in ONE transaction, in arrival order (so one device's messages keep their order), each in its
own savepoint: a handler bug rolls back that message only (logged, acked, dropped). Handlers
registered `isolated` (they keep their own atomic block) run without that savepoint; if one of
them raises all the same, the batch is rolled back and replayed one message per transaction, so
a bad message still costs the others nothing. After the commit the whole batch is acked.
A database error fails the batch: nothing is acked and the batch is retried with the same
backoff; a batch that keeps failing while the database answers is
replayed one message per transaction (`process`), which isolates the message at fault. Outbox
NOTIFYs are sent once per batch and live-page events are coalesced (fleetportal.live), so the
per-message cost is the handler's own queries.
"""

import dataclasses
import gc
import logging
import queue
import sys
import threading
import time

from django import db
from django.conf import settings
from django.db import transaction

from fleetportal import live, outbox, topics
from fleetportal.bridge import coverage, record, router, throttle
from fleetportal.bridge.partitions import RUNNER_CLIENT_ID, SINGLE, Partition
from fleetportal.bridge.subscriber import Subscriber, shared_filters
from fleetportal.bridge.transport import Connection, Received

log = logging.getLogger(__name__)

# Not a valid device_id ('.'), so no device certificate can take over the bridge's session.
BRIDGE_CLIENT_ID = RUNNER_CLIENT_ID
# A database that answers but fails the same message this often is treated as a poison message.
MAX_DATABASE_ATTEMPTS = 5
RETRY_MAX_SECONDS = 5.0
# Messages per transaction under load; the connection's in-flight window must be at least this
# large or the broker never has more to give (device-protocol.md §7.13).
BATCH_SIZE = 200
SWITCH_INTERVAL_SECONDS = 0.0005


class Runner:
    """Consumes the router's subscriptions on one persistent session and dispatches each message.

    With one partition (the default) it holds the router's wildcard filters. As partition K of
    N > 1 it holds the explicit filters of the devices K owns, kept current by a Subscriber
    thread, plus (K = 0 only) the filters that name no device (architecture.md §3).
    """

    def __init__(
        self,
        connection: Connection | None = None,
        *,
        client_id: str | None = None,
        batch_size: int = BATCH_SIZE,
        subscriptions: list[str] | None = None,
        partition: Partition = SINGLE,
    ):
        self.partition = partition
        client_id = client_id or partition.runner_client_id
        self.connection = connection or Connection(
            client_id,
            clean_session=False,
            max_inflight=max(100, batch_size),
        )
        self.batch_size = batch_size
        self.subscriptions = subscriptions
        self.subscriber = Subscriber(self.connection, partition) if partition.partitioned else None
        self.processed = 0
        self.batches = 0
        self.throttle = _device_throttle()
        if self.throttle is not None:
            self.connection.admit = self._admit
        self._reported_at = time.monotonic()
        self.record = record.Reporter(client_id)

    def run(self, stop: threading.Event) -> None:
        """Connect, subscribe and process messages until `stop` is set."""
        self.connection.subscribe(self._fixed_subscriptions())
        self.connection.connect(wait=False)
        # The subscriber shares the connection: it stops before the connection closes, also
        # when the runner ends by an exception.
        subscriber_stop = threading.Event()
        subscriber = self._start_subscriber(subscriber_stop)
        try:
            while not stop.is_set():
                batch = self.take_batch()
                if batch:
                    self.process_batch(batch, stop)
                    self.record.reached(batch[-1].received_at)
                else:
                    self.record.caught_up()
                self.report_throttled()
        finally:
            self.record.leave()
            subscriber_stop.set()
            if subscriber is not None:
                subscriber.join(timeout=10)
            self.connection.close()
            db.connection.close()

    def _admit(self, topic: str) -> bool:
        device_id = topics.device_of(topic)
        return not device_id or self.throttle.admit(device_id)

    def report_throttled(self, *, force: bool = False) -> None:
        """Every REPORT_SECONDS: tell the router which devices lost messages to the throttle."""
        now = time.monotonic()
        seconds = now - self._reported_at
        if self.throttle is None or (seconds < throttle.REPORT_SECONDS and not force):
            return
        self._reported_at = now
        dropped = self.throttle.take_report()
        if not dropped:
            return
        log.warning(
            "bridge: dropped messages over the per-device rate: %s",
            ", ".join(f"{device} {count}" for device, count in sorted(dropped.items())),
        )
        try:
            with transaction.atomic():
                router.report_throttled(dropped, seconds)
        except db.Error as exc:
            db.connection.close()
            log.warning("bridge: the throttle report was not recorded (%s)", exc)

    def _fixed_subscriptions(self) -> list[str]:
        if self.subscriptions is not None:
            return self.subscriptions
        if not self.partition.partitioned:
            return router.subscriptions()
        return shared_filters() if self.partition.index == 0 else []

    def _start_subscriber(self, stop: threading.Event) -> threading.Thread | None:
        if self.subscriber is None:
            return None
        thread = threading.Thread(
            target=self.subscriber.run, args=(stop,), name="subscriber", daemon=True
        )
        thread.start()
        return thread

    def take_batch(self, timeout: float = 0.2) -> list[Received]:
        """The next message (waiting up to `timeout`) and every one already queued behind it."""
        messages = self.connection.messages
        try:
            batch = [messages.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(messages.get_nowait())
            except queue.Empty:
                break
        return batch

    def process_batch(self, batch: list[Received], stop: threading.Event | None = None) -> None:
        """Handle `batch` in one transaction (a savepoint each), commit, then ack every message."""
        inbound = [self._inbound(received) for received in batch]
        attempt = 0
        while True:
            attempt += 1
            try:
                # The events go out when coalesced() ends: after the commit.
                with live.coalesced(), transaction.atomic(), outbox.one_notify():
                    try:
                        router.begin_batch([m for m in inbound if m is not None])
                        for message in inbound:
                            if message is not None:
                                if not router.is_isolated(message.route):
                                    router.flush_batch()
                                self._dispatch_in_batch(message)
                        router.flush_batch()
                    finally:
                        router.end_batch()
                break
            except _Isolate:
                for received in batch:
                    self.process(received, stop)
                return
            except (db.OperationalError, db.InterfaceError) as exc:
                db.connection.close()  # the next attempt reconnects
                # The connection may have died after the server committed (the COMMIT's reply
                # lost): the retry must treat every message as a possible replay, as if the
                # broker had redelivered it, or the handlers apply the batch a second time.
                inbound = [_possible_replay(message) for message in inbound]
                if attempt >= MAX_DATABASE_ATTEMPTS and _database_answers():
                    log.warning("bridge: batch failed %d times; one by one now", attempt)
                    for received in batch:
                        self.process(received, stop, possible_replay=True)
                    return
                log.warning("bridge: database error on a batch (%s); retrying", exc)
                if (stop or threading.Event()).wait(min(0.1 * 2**attempt, RETRY_MAX_SECONDS)):
                    return  # stopping while the database is down: the broker will redeliver
            except Exception:
                # A batch hook (a batched write) failed: no message of the batch may pay for
                # it, so each is replayed in a transaction of its own.
                log.exception("bridge: a batch failed; replaying it one message at a time")
                for received in batch:
                    self.process(received, stop)
                return
        for received in batch:
            self.connection.ack(received)
        self.processed += len(batch)
        self.batches += 1

    def _inbound(self, received: Received) -> router.InboundMessage | None:
        route = topics.parse(received.topic)
        if route is None:
            log.warning("bridge: no route for %s; dropped", received.topic)
            return None
        return router.InboundMessage(
            received.topic, received.payload, route, received.received_at, received.dup
        )

    @staticmethod
    def _dispatch_in_batch(message: router.InboundMessage) -> None:
        if router.is_isolated(message.route):
            try:
                router.dispatch(message)
            except (db.OperationalError, db.InterfaceError):
                raise
            except Exception as exc:
                log.warning("bridge: %s failed in a batch (%s); replaying one by one", message, exc)
                raise _Isolate from exc
            return
        try:
            with transaction.atomic():
                if not router.dispatch(message):
                    log.warning("bridge: no handler for %s; dropped", message.topic)
        except (db.OperationalError, db.InterfaceError):
            raise  # the database, not the message: the whole batch is retried
        except Exception:
            # A bug in a handler: this message's savepoint is rolled back; it is answered with
            # the internal error and acked with the batch, so one poison message cannot block
            # the bridge.
            log.exception(
                "bridge: handler for %s failed; answered with an internal error", message.topic
            )
            _reply_failure(message)

    def process(
        self,
        received: Received,
        stop: threading.Event | None = None,
        *,
        possible_replay: bool = False,
    ) -> None:
        """Dispatch one message in its own transaction; ack unless the database failed.

        `possible_replay`: an earlier transaction with this message may have committed."""
        route = topics.parse(received.topic)
        if route is None:
            log.warning("bridge: no route for %s; dropped", received.topic)
        elif not self._commit(
            router.InboundMessage(
                received.topic,
                received.payload,
                route,
                received.received_at,
                received.dup or possible_replay,
            ),
            stop,
        ):
            return  # stopping while the database is down: the broker will redeliver it
        self.connection.ack(received)
        self.processed += 1

    def _commit(self, message: router.InboundMessage, stop: threading.Event | None) -> bool:
        """Run the handler until it commits or fails for a reason other than the database."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with live.coalesced(), transaction.atomic():
                    if not router.dispatch(message):
                        log.warning("bridge: no handler for %s; dropped", message.topic)
                return True
            except (db.OperationalError, db.InterfaceError) as exc:
                db.connection.close()  # the next attempt reconnects
                message = _possible_replay(message)  # it may have committed (see process_batch)
                if attempt >= MAX_DATABASE_ATTEMPTS and _database_answers():
                    log.exception("bridge: %s failed %d times; dropped", message.topic, attempt)
                    _reply_failure_alone(message)
                    return True
                log.warning("bridge: database error on %s (%s); retrying", message.topic, exc)
                if (stop or threading.Event()).wait(min(0.1 * 2**attempt, RETRY_MAX_SECONDS)):
                    return False
            except Exception:
                # A bug in a handler: rolled back, logged, answered and acked, so one poison
                # message cannot block the bridge forever.
                log.exception(
                    "bridge: handler for %s failed; answered with an internal error", message.topic
                )
                _reply_failure_alone(message)
                return True


def _device_throttle() -> throttle.DeviceThrottle | None:
    rate = settings.DEVICE_MESSAGES_PER_SECOND
    if rate <= 0:
        return None
    return throttle.DeviceThrottle(rate, max(1, settings.DEVICE_MESSAGE_BURST))


def _possible_replay(
    message: router.InboundMessage | None,
) -> router.InboundMessage | None:
    if message is None or message.redelivered:
        return message
    return dataclasses.replace(message, redelivered=True)


def _reply_failure(message: router.InboundMessage) -> None:
    """Queue the request's internal-error reply in the current transaction (never raises)."""
    try:
        reply = router.failure_reply(message)
        if reply is not None:
            with transaction.atomic():
                outbox.send(*reply, device_id=message.route.device_id)
    except (db.OperationalError, db.InterfaceError):
        raise
    except Exception:
        log.exception("bridge: the failure reply for %s could not be built", message.topic)


def _reply_failure_alone(message: router.InboundMessage) -> None:
    """The same, in a transaction of its own (the handler's has been rolled back)."""
    try:
        with transaction.atomic():
            _reply_failure(message)
    except db.Error as exc:
        db.connection.close()
        log.warning("bridge: no failure reply for %s (%s)", message.topic, exc)


class _Isolate(Exception):
    """An isolated handler raised inside a batch: replay the batch one message at a time."""


def _database_answers() -> bool:
    try:
        with db.connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except db.Error:
        db.connection.close()
        return False


def run_forever(
    stop: threading.Event,
    *,
    publisher: bool = True,
    inbound: bool = True,
    partition: Partition = SINGLE,
) -> None:
    """`manage.py runbridge`: the runner in this thread, the outbox publisher in another."""
    from fleetportal.bridge.publisher import Publisher

    # The runner is CPU-bound; the publisher and paho's network threads mostly wait. With the
    # default 5 ms GIL switch interval each PUBACK or NOTIFY they wait for costs up to 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    # What is alive now (Django, the apps, their modules) lives as long as the process: frozen,
    # the collector's full collections stop walking it — under load they came every few
    # seconds and took ~80 ms each (docs/benchmarks-notes.md, the jobs protocol).
    gc.collect()
    gc.freeze()
    threads = []
    if publisher:
        out = Publisher(partition=partition)
        threads.append(threading.Thread(target=out.run, args=(stop,), name="outbox", daemon=True))
    for thread in threads:
        thread.start()
    try:
        if inbound:
            _forget_other_layouts(partition)
            Runner(partition=partition).run(stop)
        else:
            stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def _forget_other_layouts(partition: Partition) -> None:
    # Rows of another layout (N changed, or back to one bridge) would make issuance wait for
    # partitions that no longer run. A database that is down now must not stop the bridge.
    try:
        coverage.forget_other_layouts(partition)
    except db.Error as exc:
        log.warning("bridge: could not clear other partition layouts (%s)", exc)
    finally:
        db.connection.close()
