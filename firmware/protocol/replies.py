"""Serving one MQTT jobs request: its answer on J/…/accepted, or its refusal on J/…/rejected,
through the outbox (device-protocol.md §2.1, §2.3). The bridge's handlers call these."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction

from firmware import errors
from firmware.errors import InvalidTopic, JobsError
from firmware.protocol import service
from fleetportal import outbox, topics
from fleetportal.bridge import replies

Operation = Callable[..., dict[str, Any]]
Message = tuple[str, dict[str, Any], str]  # (topic, document, device_id) for outbox.send_many


def handle_request(
    kind: str,
    thing: str,
    job_id: str,
    payload: bytes,
    *,
    now: datetime,
    redelivered: bool = False,
) -> None:
    """Answer one request of route kind `kind` (topics.JOBS_*)."""
    try:
        with transaction.atomic():  # a refusal rolls back whatever the request began
            body = _serve(kind, thing, job_id, payload, now, redelivered)
    except JobsError as error:
        topic, document, _ = rejected(kind, thing, job_id, error, payload, now)
    else:
        topic, document, _ = accepted(kind, thing, job_id, body)
    outbox.send(topic, document, device_id=thing)


def accepted(kind: str, thing: str, job_id: str, body: dict[str, Any]) -> Message:
    """The request's answer on J/…/accepted, as an outbox message."""
    return topics.jobs_topic(thing, kind, job_id, "accepted"), body, thing


def rejected(
    kind: str, thing: str, job_id: str, error: JobsError, payload: bytes, now: datetime
) -> Message:
    """The request's refusal on J/…/rejected, as an outbox message."""
    return topics.jobs_topic(thing, kind, job_id, "rejected"), _rejected(error, payload, now), thing


def handle_invalid_topic(topic: str, thing: str, payload: bytes, *, now: datetime) -> None:
    """A request under J that names no API (a bad job id, `$next` on update): InvalidTopic on
    the request topic + /rejected, where a device waiting for an answer listens."""
    error = InvalidTopic(f"The topic {topic} maps to no jobs API.")
    outbox.send(topics.rejected(topic), _rejected(error, payload, now), device_id=thing)


def _serve(
    kind: str, thing: str, job_id: str, payload: bytes, now: datetime, redelivered: bool
) -> dict[str, Any]:
    if kind == topics.JOBS_GET_PENDING:
        return service.get_pending(thing, payload, now=now)
    if kind == topics.JOBS_START_NEXT:
        return service.start_next(thing, payload, now=now, redelivered=redelivered)
    if kind == topics.JOBS_DESCRIBE:
        return service.describe(thing, job_id, payload, now=now)
    if kind == topics.JOBS_UPDATE:
        return service.update(thing, job_id, payload, now=now, redelivered=redelivered)
    raise ValueError(f"not a jobs request kind: {kind!r}")


def _rejected(error: JobsError, payload: bytes, now: datetime) -> dict[str, Any]:
    token = replies.client_token(payload)
    return errors.rejected_document(error, client_token=token, timestamp=int(now.timestamp()))
