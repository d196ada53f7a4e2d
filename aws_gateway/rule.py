"""The AWS IoT topic rules that carry what devices on AWS IoT Core say to the portal's SQS queue,
and the one shape every forwarded message has on that queue (`aws_setup` creates the rules; the
queue's consumer reads them with `parse`).

A rule has one topic filter (its FROM), so there is one rule per kind of message, all with the
same SQS action and the same SELECT:

    SELECT '<kind>' AS kind, topic() AS topic, timestamp() AS receivedAt,
           encode(*, 'base64') AS payload FROM '<topic filter>'

so each SQS message body is a JSON object

    {"kind": "shadow_documents", "topic": "$aws/things/pump-7/shadow/update/documents",
     "receivedAt": 1765130000123, "payload": "<base64 of the MQTT payload, byte for byte>"}

`receivedAt` is AWS IoT's time of arrival in epoch milliseconds. The payload travels as base64
(AWS IoT SQL reference, "Working with binary payloads": `encode(*, 'base64')`) because a device's
telemetry is not always JSON, and adding fields to a device's own JSON could collide with its
keys; it decodes to exactly the bytes AWS's documented topics carry (the kinds below).

moto has no rules engine: a rule is stored but never fires. The tests put on the queue what the
rule would forward, with `forwarded_message` (docs/aws-registry.md).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from fleetportal import topics

SQL_VERSION = "2016-03-23"
RULE_PREFIX = "fleetportal_"


@dataclass(frozen=True)
class Forward:
    """One kind of message a rule forwards: its name (the body's `kind`) and topic filter."""

    kind: str
    topic_filter: str

    @property
    def rule_name(self) -> str:
        # Rule names are [a-zA-Z0-9_]+ (CreateTopicRule).
        return RULE_PREFIX + self.kind

    @property
    def sql(self) -> str:
        # AWS IoT SQL, not a database's: both values are this module's own constants.
        select = "kind, topic() AS topic, timestamp() AS receivedAt, encode(*, 'base64') AS payload"
        return f"SELECT '{self.kind}' AS {select} FROM '{self.topic_filter}'"  # noqa: S608


SHADOW_DOCUMENTS = Forward("shadow_documents", topics.shadow_documents_filter())
"""The classic shadow's $aws/things/{thing}/shadow/update/documents: AWS's documents message
(device-protocol.md §1.2), `{"previous": {"state": {"desired": …, "reported": …}, "metadata": …,
"version": n}, "current": {… version n+1}, "timestamp": s, "clientToken": "…"}`, published after
every accepted update, whoever made it (the device, or the portal through UpdateThingShadow)."""

NAMED_SHADOW_DOCUMENTS = Forward("named_shadow_documents", topics.shadow_documents_filter(True))
"""The same documents message for a named shadow: …/shadow/name/{name}/update/documents (the
shadow's name is the topic's sixth level)."""

PRESENCE = Forward("presence", topics.lifecycle_filter())
"""AWS IoT lifecycle events, $aws/events/presence/connected/{clientId} and
…/disconnected/{clientId}: `{"clientId": "pump-7", "timestamp": ms, "eventType": "connected",
"sessionIdentifier": "…", "principalIdentifier": "…", "versionNumber": n, "ipAddress": "…"}`;
a disconnection adds `"clientInitiatedDisconnect": bool` and `"disconnectReason": "…"`. The
client id is the device id (the IoT policy admits only a client id equal to its thing's name).
Events of one client are ordered by `versionNumber`, not by arrival."""

TELEMETRY = Forward("telemetry", topics.telemetry_filter())
"""A device's devices/{device_id}/telemetry messages, the same payload it sends to the portal's
Mosquitto (device-protocol.md, telemetry): usually a JSON object of readings."""

JOB_EXECUTIONS = Forward("job_executions", topics.job_execution_events_filter())
"""AWS IoT Jobs events for executions, $aws/events/jobExecution/{jobId}/{status} with status one
of succeeded, failed, rejected, canceled, removed, timed_out, deleted: `{"eventType":
"JOB_EXECUTION", "eventId": "…", "timestamp": s, "operation": "succeeded", "jobId": "…",
"thingArn": "arn:aws:iot:…:thing/pump-7", "status": "SUCCEEDED", "statusDetails": {…}}`. AWS
publishes them only with the JOB_EXECUTION event configuration enabled (`aws_setup` does)."""

FORWARDS = (SHADOW_DOCUMENTS, NAMED_SHADOW_DOCUMENTS, PRESENCE, TELEMETRY, JOB_EXECUTIONS)
KINDS = {forward.kind: forward for forward in FORWARDS}


def rule_payload(forward: Forward, *, queue_url: str, role_arn: str) -> dict[str, Any]:
    """CreateTopicRule's topicRulePayload for one kind: its SQL and the SQS action."""
    return {
        "sql": forward.sql,
        "description": f"fleetportal: {forward.kind} to the portal's queue (aws_gateway/rule.py)",
        "awsIotSqlVersion": SQL_VERSION,
        "ruleDisabled": False,
        "actions": [{"sqs": {"queueUrl": queue_url, "roleArn": role_arn, "useBase64": False}}],
    }


@dataclass(frozen=True)
class Forwarded:
    """A message a rule put on the queue: its kind, MQTT topic, payload bytes, arrival (ms)."""

    kind: str
    topic: str
    payload: bytes
    received_at_ms: int

    def document(self) -> Any:
        """The payload as JSON; NotForwardedMessage if it is not JSON."""
        try:
            return orjson.loads(self.payload)
        except orjson.JSONDecodeError as exc:
            raise NotForwardedMessage(f"the {self.kind} payload is not JSON: {exc}") from exc


class NotForwardedMessage(ValueError):
    """An SQS message that is not what the rules send (says what is wrong with it)."""


def forwarded_message(kind: str, topic: str, payload: bytes | dict, received_at_ms: int) -> str:
    """The SQS body a rule would send for `payload` published on `topic` (tests, benchmarks)."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    body = {
        "kind": kind,
        "topic": topic,
        "receivedAt": received_at_ms,
        "payload": base64.b64encode(raw).decode("ascii"),
    }
    return orjson.dumps(body).decode()


def parse(body: str | bytes) -> Forwarded:
    """The forwarded message in an SQS body; NotForwardedMessage names what does not fit."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotForwardedMessage(f"the body is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise NotForwardedMessage("the body is not a JSON object")
    kind, topic = message.get("kind"), message.get("topic")
    received, payload = message.get("receivedAt"), message.get("payload")
    if kind not in KINDS:
        raise NotForwardedMessage(f"unknown kind {kind!r}")
    if not isinstance(topic, str) or not topic:
        raise NotForwardedMessage("no topic")
    if not isinstance(received, int) or isinstance(received, bool):
        raise NotForwardedMessage("receivedAt is not epoch milliseconds")
    try:
        raw = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
    except binascii.Error:
        raw = None
    if raw is None:
        raise NotForwardedMessage("payload is not base64")
    return Forwarded(kind, topic, raw, received)
