"""Jobs requests in the bridge's batches: one lock-and-load query, one UPDATE and one COPY per
batch, where one by one each start-next or update costs 10-13 statements.

The bridge handles up to a few hundred messages in one transaction (fleetportal.bridge.runner).
When a batch begins, the executions its start-next and update requests need are locked and
loaded with one query (batch_sql.load). Each request that takes the common path is applied in
memory with the service's own functions (moves: checks, report, remember, notifications and
answers); its row change, its notifications and its answer are queued, and `flush` writes
them — executions with one UPDATE, the outbox messages in arrival order with one COPY.
Refusals that change nothing (InvalidJson, InvalidRequest, ResourceNotFound, VersionMismatch,
InvalidStateTransition) are answered the same way.

Anything else goes through the service (replies.handle_request) as before, after what is
queued has been written: get and describe; a redelivered message (it may have been applied);
a clientToken an execution of the device already remembers (maybe a repeat); the start or the
end of a firmware job's execution (firmware_runs moves the device and records events); a move
whose notifications need more of the device's queue than was loaded. Once the service has
handled a start-next or an update, the device's rows are read again if the batch has more
requests of it. So the rows, replies, notifications, their order and the events are those of
one-by-one processing.
"""

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.utils import timezone

from devices.choices import DeviceStatus
from firmware import documents, executions, notifications
from firmware.choices import ExecutionStatus as S
from firmware.errors import JobsError
from firmware.models import JobExecution
from firmware.protocol import batch_sql, moves, repeats, replies, requests
from firmware.protocol.batch_sql import DeviceJobs
from firmware.protocol.replies import Message
from fleetportal import outbox, topics
from fleetportal.bridge import router

BATCHED = (topics.JOBS_START_NEXT, topics.JOBS_UPDATE)
# A device's pending executions loaded beyond its `notify` list: one per request of it in the
# batch (each may end one), up to this many; past that the service serves the rest.
MAX_EXTRA = notifications.LIST_LIMIT

_state = threading.local()


class Fallback(Exception):
    """This request leaves the in-memory path: the service handles it."""


@dataclass
class Pending:
    """What a batch knows and has queued."""

    remaining: Counter[str]  # start-next and update requests not handled yet, per device
    ending: Counter[str]  # updates that may end an execution, per device
    named: set[tuple[str, str]]  # (device_id, job_id) of the batch's updates
    starting: set[str]  # the devices with a start-next in the batch
    tokens: set[str]  # the clientTokens of the batch's start-nexts
    since: datetime  # older token entries cannot make a repeat (not redelivered)
    devices: dict[str, DeviceJobs | None] = field(default_factory=dict)  # None: no such thing
    stale: set[str] = field(default_factory=set)  # the service may have changed their rows
    changed: dict[int, JobExecution] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)

    def load(self, things: set[str]) -> None:
        """Lock and load `things`: the rows their `notify` lists need when the batch may end
        executions of theirs (one row past the list for each), else their head for a
        start-next, else none (a progress report needs no queue; one that starts a QUEUED
        execution, which is rare, then goes to the service)."""
        windows = {thing: self._window(thing) for thing in things}
        loaded = batch_sql.load(
            windows,
            named=self.named,
            tokens=self.tokens,
            starting=self.starting,
            since=self.since,
        )
        self.stale -= things
        self.devices.update({thing: loaded.get(thing) for thing in things})

    def _window(self, thing: str) -> int:
        if self.ending[thing]:
            return notifications.LIST_LIMIT + min(self.ending[thing], MAX_EXTRA)
        return 1 if thing in self.starting else 0

    def device(self, thing: str) -> DeviceJobs:
        """The thing's device as loaded (read again once stale), or ResourceNotFound."""
        if thing in self.stale:
            # One query for every stale device the batch has more requests of (this one's
            # request is no longer counted in `remaining`).
            self.load({t for t in self.stale if self.remaining[t] > 0} | {thing})
        if thing not in self.devices:
            raise Fallback
        jobs = self.devices[thing]
        if jobs is None or jobs.device.status == DeviceStatus.DECOMMISSIONED:
            raise moves.thing_not_found(thing)
        return jobs


def _pending() -> Pending | None:
    return getattr(_state, "pending", None)


def begin(messages: list[router.InboundMessage]) -> None:
    """Lock and load, in one query, what this batch's start-next and update requests need."""
    batched = [m for m in messages if m.route.kind in BATCHED]
    if not batched:
        _state.pending = None
        return
    bodies = [(m, _body(m.payload)) for m in batched]
    starts = [(m, body) for m, body in bodies if m.route.kind == topics.JOBS_START_NEXT]
    updates = [(m, body) for m, body in bodies if m.route.kind == topics.JOBS_UPDATE]
    pending = Pending(
        remaining=Counter(m.device_id for m in batched),
        ending=Counter(m.device_id for m, body in updates if _may_end(body)),
        named={(m.device_id, m.route.job_id) for m, _ in updates},
        starting={m.device_id for m, _ in starts},
        tokens={
            body["clientToken"] for _, body in starts if isinstance(body.get("clientToken"), str)
        },
        since=min(m.received_at for m in batched) - repeats.REPEAT_WINDOW,
    )
    pending.load(set(pending.remaining))
    _state.pending = pending


def _body(payload: bytes) -> dict:
    """The request's fields as far as it has any (what sizes the load; the requests are read
    and checked properly when they are applied)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _may_end(body: dict) -> bool:
    status = body.get("status")
    return not isinstance(status, str) or executions.is_terminal(status)


def flush() -> None:
    """Write what the batch has applied in memory (its cached rows stay valid). The bridge's
    outbox.one_notify block sends the batch's one NOTIFY."""
    pending = _pending()
    if pending is None:
        return
    if pending.changed:
        batch_sql.write(pending.changed.values())
        pending.changed.clear()
    if pending.messages:
        outbox.send_many(pending.messages)
        pending.messages.clear()


def invalidate() -> None:
    """Flush, then forget every cached row (a handler that is not isolated may change any)."""
    flush()
    pending = _pending()
    if pending is not None:
        pending.stale.update(pending.devices)
        pending.devices.clear()


def end() -> None:
    _state.pending = None


def handle(
    kind: str,
    thing: str,
    job_id: str,
    payload: bytes,
    *,
    now: datetime,
    redelivered: bool = False,
) -> None:
    """The MQTT handler's entry point: the in-memory path when it applies, else the service."""
    pending = _pending()
    if pending is not None and kind in BATCHED:
        pending.remaining[thing] -= 1
        if not redelivered:
            try:
                pending.messages += _apply(pending, kind, thing, job_id, payload, now)
                return
            except Fallback:
                pass
    if pending is not None:
        flush()  # the service reads, and answers after, what the batch applied before it
        if kind in BATCHED and thing in pending.devices:
            pending.devices.pop(thing)
            pending.stale.add(thing)
    replies.handle_request(kind, thing, job_id, payload, now=now, redelivered=redelivered)


def _apply(
    pending: Pending, kind: str, thing: str, job_id: str, payload: bytes, now: datetime
) -> list[Message]:
    """The request's messages, in the order the service sends them (raises Fallback)."""
    try:
        if kind == topics.JOBS_START_NEXT:
            return _start_next(pending, thing, requests.start_next(payload), now)
        return _update(pending, thing, job_id, requests.update(job_id, payload), now)
    except JobsError as error:
        return [replies.rejected(kind, thing, job_id, error, payload, now)]


def _start_next(
    pending: Pending, thing: str, request: requests.StartNext, now: datetime
) -> list[Message]:
    jobs = pending.device(thing)
    if request.token is not None and any(
        repeats.mentions(e, request.token) for e in jobs.executions
    ):
        raise Fallback  # maybe a repeat: the service looks at every execution of the device
    first = jobs.first(1)
    if first is None:
        raise Fallback
    head = first[0] if first else None
    if head is not None and head.status == S.QUEUED:
        if head.job.firmware_id is not None or head.pk not in jobs.locked:
            raise Fallback  # firmware_runs.started; or a row the batch may not change
        moves.start(head, request, now)
        pending.changed[head.pk] = head
    answer = moves.start_next_answer(head, request.token, now)
    if head is not None:
        _as_stored(head)
    return [replies.accepted(topics.JOBS_START_NEXT, thing, "", answer)]


def _update(
    pending: Pending, thing: str, job_id: str, request: requests.Update, now: datetime
) -> list[Message]:
    jobs = pending.device(thing)
    execution = jobs.find(job_id, request.number)
    if execution is None:
        raise moves.execution_not_found(job_id, thing)
    if execution.pk not in jobs.locked:
        raise Fallback  # not locked by the batch (the service locks it)
    if request.token is not None and repeats.mentions(execution, request.token):
        raise Fallback  # maybe a repeat: the service compares it with what it remembers
    moves.check_update(execution, request.target, request.expected)
    previous = execution.status
    if execution.job.firmware_id is not None and moves.starts_or_ends(previous, request.target):
        raise Fallback  # firmware_runs.started / ended
    notify = moves.notification(previous, request.target)
    before = jobs.first(1) if notify else []
    saved = {name: getattr(execution, name) for name in moves.CHANGED_FIELDS}
    moves.update(execution, request, now)
    answer = moves.update_answer(execution, request, documents.state(execution), now.timestamp())
    _as_stored(execution)
    messages = _notifications(jobs, thing, notify, before) if notify else []
    if messages is None:
        for name, value in saved.items():
            setattr(execution, name, value)
        raise Fallback  # its notifications need more of the queue than was loaded
    pending.changed[execution.pk] = execution
    return [*messages, replies.accepted(topics.JOBS_UPDATE, thing, job_id, answer)]


def _notifications(
    jobs: DeviceJobs, thing: str, notify: str, before: list[JobExecution] | None
) -> list[Message] | None:
    """What a move tells the device (§2.5), given its head before the move; None when the
    loaded rows cannot tell its head or its list."""
    listed = jobs.first(notifications.LIST_LIMIT if notify == moves.NOTIFY_ALL else 1)
    if before is None or listed is None:
        return None
    head_before = before[0].pk if before else None
    now = documents.epoch(timezone.now())
    everything = notify == moves.NOTIFY_ALL
    return notifications.device_messages(thing, listed, head_before, notify=everything, now=now)


def _as_stored(execution: JobExecution) -> None:
    # The service answers a request from the row it changed, and later ones from the row read
    # back; so does the batch, from here on.
    execution.status_details = batch_sql.as_stored(execution.status_details or {})
