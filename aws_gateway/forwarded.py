"""What the AWS IoT rules put on the portal's queue, read and checked (aws_gateway.rule).

Every rule selects the same envelope — `{"topic": topic(), "payload": encode(*, 'base64'),
"received_at": timestamp()}` — so the message AWS published (a shadow's `update/documents`, a
lifecycle event, a job execution event, a device's telemetry) arrives byte for byte as AWS
published it, and is read here as AWS documents it. Anything else — not JSON, a NUL, another
shape, a topic no rule forwards, a payload over AWS_MAX_PAYLOAD_BYTES, a document without its
version — is a Refused with the reason: the consumer counts, logs and deletes it.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings

from aws_gateway import client
from fleetportal import json_safety, topics

# AWS IoT Jobs' execution statuses (JobExecutionStatus).
EXECUTION_STATUSES = {
    "QUEUED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "REJECTED",
    "REMOVED",
    "CANCELED",
}
_YEAR_3000 = 32_503_680_000


@dataclass(frozen=True)
class Refused:
    message_id: str
    reason: str


@dataclass(frozen=True)
class Forwarded:
    """A message a rule forwarded: its topic's meaning, the payload as published, when AWS got
    it, and the payload read as JSON for the kinds that are JSON (None for telemetry)."""

    message_id: str
    route: topics.Forwarded
    topic: str
    payload: bytes
    received_at: datetime
    document: dict[str, Any] | None

    @property
    def device_id(self) -> str:
        if self.route.kind == topics.FORWARDED_JOB_EXECUTION:
            return client.thing_of_arn(str((self.document or {}).get("thingArn", "")))
        return self.route.device_id


def read(message: dict[str, Any]) -> Forwarded | Refused:
    message_id = str(message.get("MessageId", ""))
    body = message.get("Body")
    if not isinstance(body, str):
        return Refused(message_id, "no body")
    if "\x00" in body or "\\u0000" in body:
        return Refused(message_id, "NUL in the body")
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Refused(message_id, "not JSON")
    if not isinstance(envelope, dict) or not isinstance(envelope.get("topic"), str):
        return Refused(message_id, "not a forwarded message (no topic)")
    route = topics.parse_forwarded(envelope["topic"])
    if route is None:
        return Refused(message_id, f"a topic no rule forwards: {envelope['topic'][:200]!r}")
    payload = _payload(envelope.get("payload"))
    if payload is None:
        return Refused(message_id, "payload missing or not base64")
    if len(payload) > settings.AWS_MAX_PAYLOAD_BYTES:
        return Refused(message_id, f"payload of {len(payload)} bytes, over the limit")
    if b"\x00" in payload:
        return Refused(message_id, "NUL in the payload")
    received_at = _epoch_ms(envelope.get("received_at")) or datetime.now(UTC)
    document = None
    if route.kind != topics.FORWARDED_TELEMETRY:
        document = _document(payload)
        problem = _problem(route.kind, document)
        if problem:
            return Refused(message_id, problem)
    return Forwarded(message_id, route, envelope["topic"], payload, received_at, document)


def _payload(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _document(payload: bytes) -> dict[str, Any] | None:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _problem(kind: str, document: dict[str, Any] | None) -> str:
    if document is None:
        return f"{kind}: payload is not a JSON object"
    unsafe = json_safety.problem(document)
    if unsafe:
        return f"{kind}: {unsafe}"
    if kind == topics.FORWARDED_DOCUMENTS:
        current = document.get("current")
        if not isinstance(current, dict) or not _count(current.get("version")):
            return "shadow documents without current.version"
        if not isinstance(current.get("state", {}), dict):
            return "shadow documents with a current.state that is not an object"
    elif kind == topics.FORWARDED_LIFECYCLE:
        if not _epoch_ms(document.get("timestamp")) or not isinstance(
            document.get("clientId"), str
        ):
            return "lifecycle event without clientId or timestamp"
    elif kind == topics.FORWARDED_JOB_EXECUTION:
        if document.get("status") not in EXECUTION_STATUSES:
            return "job execution event without a known status"
        if not client.thing_of_arn(str(document.get("thingArn", ""))):
            return "job execution event without a thing ARN"
    return ""


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def _epoch_ms(value: Any) -> datetime | None:
    """AWS's timestamps in milliseconds (lifecycle events, the rule's timestamp())."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 < value < _YEAR_3000 * 1000:
        return None
    return datetime.fromtimestamp(value / 1000, UTC)


def epoch_seconds(value: Any) -> datetime | None:
    """AWS's timestamps in seconds (shadow documents, job execution events)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 < value < _YEAR_3000:
        return None
    return datetime.fromtimestamp(value, UTC)
