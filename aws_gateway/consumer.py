"""The queue consumer (`manage.py runsqs`): what AWS IoT's rules forward, applied like the bridge.

Each round long-polls the queue (WaitTimeSeconds 20, up to 10 messages), reads every message
(aws_gateway.forwarded) and applies the batch in ONE transaction through the services the
bridge uses: shadow documents through shadows.mirror (versions: a repeat or an older document
changes nothing), lifecycle events through monitoring's presence writes, telemetry through its
ingest (one COPY), job execution events through aws_gateway.job_mirror. Only after the commit
are the messages deleted (DeleteMessageBatch): a crash or a database error before it leaves
them on the queue, and SQS delivers them again after their visibility timeout — the bridge's
lossless contract, and the versions make the redelivery harmless.

A message that is not what the rules send is counted, logged with its id and deleted (sent to
AWS_DEAD_LETTER_QUEUE_URL first when set) in the same round, so it never comes back to block
the queue. Devices the portal does not have on AWS are counted the same way.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from aws_gateway import client, errors, fleet, forwarded, job_mirror, status
from aws_gateway.choices import LinkPart
from devices import last_seen
from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal import topics
from fleetportal.bridge import record, router
from monitoring.presence import lifecycle
from monitoring.presence import writes as presence
from monitoring.telemetry import ingest
from shadows import mirror

log = logging.getLogger(__name__)

WAIT_SECONDS = 20
BATCH = 10
ACTOR = "aws"
TELEMETRY_KIND = "device:telemetry"


@dataclass
class Round:
    """One receive: what was applied, ignored as stale, refused; and the messages to delete."""

    received: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    done: list[dict[str, Any]] = field(default_factory=list)  # delete these after the commit
    oldest: datetime | None = None  # the receive time of the round's oldest device message


def receive(queue_url: str, wait: int = WAIT_SECONDS) -> list[dict[str, Any]]:
    answer = client.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait
    )
    return answer.get("Messages", [])


# How far this consumer's record of device messages reaches (fleetportal.bridge.record).
RECORD = record.Reporter("aws-sqs")


def consume(queue_url: str, wait: int = WAIT_SECONDS) -> Round:
    """One round: receive, apply in one transaction, delete after the commit."""
    messages = receive(queue_url, wait)
    result = apply(messages)
    if result.done:
        delete(queue_url, result.done)
    # A standard queue delivers out of order: the round's oldest message says how far behind.
    if result.oldest is None:
        RECORD.caught_up()
    else:
        RECORD.reached(result.oldest)
    return result


def apply(messages: list[dict[str, Any]]) -> Round:
    """Apply a received batch in one transaction; the messages to delete once it committed."""
    result = Round(received=len(messages))
    read = [(message, forwarded.read(message)) for message in messages]
    refused = [(m, r) for m, r in read if isinstance(r, forwarded.Refused)]
    good = [(m, r) for m, r in read if isinstance(r, forwarded.Forwarded)]
    with transaction.atomic():
        devices = _devices_on_aws({r.device_id for _, r in good})
        for message, item in good:
            if item.device_id not in devices:
                refused.append((message, forwarded.Refused(item.message_id, "not a device on AWS")))
        good = [(m, r) for m, r in good if r.device_id in devices]
        _apply_all([r for _, r in good], devices, result.counts)
        result.oldest = min((r.received_at for _, r in good), default=None)
        for _, reason in refused:
            log.warning("AWS queue: message %s refused: %s", reason.message_id, reason.reason)
        result.counts["refused"] += len(refused)
        status.ok(
            LinkPart.QUEUE,
            applied=result.counts["applied"],
            duplicates=result.counts["stale"],
            rejected=len(refused),
        )
    if refused and settings.AWS_DEAD_LETTER_QUEUE_URL:
        _dead_letter([m for m, _ in refused], [r for _, r in refused])
    result.done = [m for m, _ in good] + [m for m, _ in refused]
    return result


def _devices_on_aws(device_ids: set[str]) -> dict[str, Any]:
    if not device_ids:
        return {}
    rows = (
        Device.objects.filter(fleet.on_aws(), device_id__in=device_ids)
        .exclude(status=DeviceStatus.DECOMMISSIONED)
        .values_list("device_id", "pk")
    )
    return dict(rows)


def _apply_all(items: list[forwarded.Forwarded], devices: dict, counts: Counter) -> None:
    by_kind: dict[str, list[forwarded.Forwarded]] = {}
    for item in items:
        by_kind.setdefault(item.route.kind, []).append(item)
    documents = [_document(i, devices) for i in by_kind.get(topics.FORWARDED_DOCUMENTS, [])]
    counts.update(mirror.apply(documents, actor=ACTOR))
    _presence(by_kind.get(topics.FORWARDED_LIFECYCLE, []), counts)
    _telemetry(by_kind.get(topics.FORWARDED_TELEMETRY, []), counts)
    _job_events(by_kind.get(topics.FORWARDED_JOB_EXECUTION, []), counts)
    _seen(items)


def _seen(items: list[forwarded.Forwarded]) -> None:
    """last_seen of the devices that spoke, as the bridge writes it for its devices (one
    statement). A shadow document counts at the time its mirror uses, so the report that
    confirms a firmware version is not also its own sign of life after it (rollout health); a
    lifecycle event only when the device connected."""
    last_seen.begin(items)
    try:
        for item in items:
            kind, event = item.route.kind, item.document or {}
            if kind == topics.FORWARDED_LIFECYCLE and (
                event.get("eventType") != topics.LIFECYCLE_CONNECTED
            ):
                continue
            at = _document_time(item) if kind == topics.FORWARDED_DOCUMENTS else item.received_at
            last_seen.seen(item.device_id, at)
        last_seen.flush()
    finally:
        last_seen.end()


def _document(item: forwarded.Forwarded, devices: dict) -> mirror.GatewayDocument:
    current = (item.document or {})["current"]
    at = _document_time(item)
    return mirror.GatewayDocument(
        device_pk=devices[item.device_id],
        device_id=item.device_id,
        name=item.route.name,
        document={"state": current.get("state") or {}, "metadata": current.get("metadata")},
        version=current["version"],
        at=at,
    )


def _document_time(item: forwarded.Forwarded) -> datetime:
    """A shadow document's time: AWS's own timestamp, else when the rule received it."""
    return forwarded.epoch_seconds((item.document or {}).get("timestamp")) or item.received_at


def _presence(items: list[forwarded.Forwarded], counts: Counter) -> None:
    if not items:
        return
    presence.begin(items)
    try:
        for item in items:
            signal = lifecycle.signal_of(item.document or {})
            if signal is not None:
                presence.record(item.device_id, signal)
        presence.flush()
    finally:
        presence.end()
    counts["applied"] += len(items)


def _telemetry(items: list[forwarded.Forwarded], counts: Counter) -> None:
    if not items:
        return
    ingest.begin(items)
    try:
        for item in items:
            route = topics.Route(TELEMETRY_KIND, device_id=item.device_id)
            ingest.store(router.InboundMessage(item.topic, item.payload, route, item.received_at))
        ingest.flush()
    finally:
        ingest.end()
    counts["applied"] += len(items)


def _job_events(items: list[forwarded.Forwarded], counts: Counter) -> None:
    states = []
    for item in items:
        event = item.document or {}
        details = event.get("statusDetails")
        states.append(
            job_mirror.ExecutionState(
                aws_job_id=item.route.job_id,
                thing_name=item.device_id,
                status=event["status"],
                at=forwarded.epoch_seconds(event.get("timestamp")) or item.received_at,
                status_details=details if isinstance(details, dict) else None,
            )
        )
    changed = job_mirror.apply(states)
    counts["applied"] += changed
    counts["stale"] += len(states) - changed


def delete(queue_url: str, messages: list[dict[str, Any]]) -> None:
    """DeleteMessageBatch, ten at a time; a delete that fails leaves the message to come back
    (its repeat changes nothing) and is logged."""
    sqs = client.client("sqs")
    for start in range(0, len(messages), BATCH):
        chunk = messages[start : start + BATCH]
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)]
        answer = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        for failure in answer.get("Failed", []):
            log.warning("AWS queue: delete failed (%s); the message will come back", failure)


def _dead_letter(messages: list[dict[str, Any]], reasons: list[forwarded.Refused]) -> None:
    entries = [
        {
            "Id": str(n),
            "MessageBody": m.get("Body") or "(empty)",
            "MessageAttributes": {
                "refused": {"DataType": "String", "StringValue": r.reason[:256] or "refused"}
            },
        }
        for n, (m, r) in enumerate(zip(messages, reasons, strict=True))
    ]
    client.client("sqs").send_message_batch(
        QueueUrl=settings.AWS_DEAD_LETTER_QUEUE_URL, Entries=entries
    )


def run(queue_url: str, *, rounds: int | None = None, sleep=time.sleep) -> None:
    """Consume until stopped (or `rounds` rounds): an AWS or database error is recorded on the
    link and retried after 1, 2, 4 … s (at most AWS_RETRY_MAX_SECONDS); nothing is deleted
    that did not commit."""
    failures = 0
    done = 0
    while rounds is None or done < rounds:
        done += 1
        try:
            consume(queue_url)
        except (*errors.AWS_ERRORS, DatabaseError) as error:
            failures += 1
            pause = errors.backoff(failures)
            log.warning("AWS queue: %s; again in %s", errors.describe(error), pause)
            if isinstance(error, DatabaseError):
                close_old_connections()  # a broken connection is replaced on the next round
            _record_failure(error)
            sleep(pause.total_seconds())
        else:
            failures = 0


def _record_failure(error: BaseException) -> None:
    try:
        status.failed(LinkPart.QUEUE, errors.describe(error))
    except DatabaseError:
        log.exception("AWS queue: the link's status could not be recorded")
