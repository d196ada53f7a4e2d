"""The AWS IoT topic rules that carry what devices on AWS IoT Core say to the portal's SQS
queue (`aws_setup` creates them; the queue's consumer reads what they send).

A rule has one topic filter (its FROM), so there is one rule per filter, all with the same SQS
action and the same SELECT — the envelope the consumer reads:

    SELECT topic() AS topic, encode(*, 'base64') AS payload, timestamp() AS received_at
    FROM '<topic filter>'

so each SQS message body is a JSON object

    {"topic": "$aws/things/pump-7/shadow/update/documents",
     "payload": "<base64 of the MQTT payload, byte for byte>", "received_at": 1765130000123}

`received_at` is AWS IoT's time of arrival in epoch milliseconds. The payload travels as base64
(AWS IoT SQL reference, "Working with binary payloads": `encode(*, 'base64')`) because a
device's telemetry is not always JSON, and fields added to a device's own JSON could collide
with its keys; decoded, it is exactly what AWS documents for each topic (below).

The consumer (aws_gateway.forwarded, aws_gateway.consumer) reads this envelope and accepts the
topics of fleetportal.topics.forwarded_filters(), the same filters as these rules (a test holds
them equal); moto has no rules engine, so the tests put on the queue what a rule would send.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from fleetportal import topics

SQL_VERSION = "2016-03-23"
SELECT = "SELECT topic() AS topic, encode(*, 'base64') AS payload, timestamp() AS received_at"


@dataclass(frozen=True)
class Forward:
    """One rule: its name ([a-zA-Z0-9_]+) and the topic filter it forwards."""

    rule_name: str
    topic_filter: str

    @property
    def sql(self) -> str:
        return f"{SELECT} FROM '{self.topic_filter}'"


# The classic shadow's …/shadow/update/documents: {"previous": {"state": {"desired": …,
# "reported": …}, "metadata": …, "version": n}, "current": {… version n+1}, "timestamp": s,
# "clientToken": "…"}, after every accepted update, whoever made it (the device, or the portal
# through UpdateThingShadow).
SHADOW_DOCUMENTS = Forward("fleetportal_shadow_documents", topics.shadow_documents_filter())
# The same documents for a named shadow: …/shadow/name/{name}/update/documents.
NAMED_SHADOW_DOCUMENTS = Forward(
    "fleetportal_shadow_documents_1", topics.shadow_documents_filter(named=True)
)
# AWS IoT lifecycle events, …/presence/connected/{clientId} and …/disconnected/{clientId}:
# {"clientId": "pump-7", "timestamp": ms, "eventType": "connected", "sessionIdentifier": "…",
# "principalIdentifier": "…", "versionNumber": n, "ipAddress": "…"}; a disconnection adds
# "clientInitiatedDisconnect" and "disconnectReason". The client id is the device id (the
# fleet's policy admits only a client id equal to its thing's name).
LIFECYCLE = Forward("fleetportal_lifecycle", topics.lifecycle_topic("+", "+"))
# AWS IoT Jobs events, …/jobExecution/{jobId}/{operation} (succeeded, failed, rejected,
# canceled, removed, timed_out, deleted): {"eventType": "JOB_EXECUTION", "eventId": "…",
# "timestamp": s, "operation": "…", "jobId": "…", "thingArn": "arn:aws:iot:…:thing/pump-7",
# "status": "SUCCEEDED", "statusDetails": {…}}; published only with the JOB_EXECUTION event
# configuration enabled (aws_setup enables it).
JOB_EXECUTIONS = Forward("fleetportal_job_execution", topics.job_execution_events_filter())
# A device's telemetry, the payload it sends the portal's Mosquitto.
TELEMETRY = Forward("fleetportal_telemetry", topics.telemetry_filter())

FORWARDS = (SHADOW_DOCUMENTS, NAMED_SHADOW_DOCUMENTS, LIFECYCLE, JOB_EXECUTIONS, TELEMETRY)


def sqs_action(queue_url: str, role_arn: str) -> dict[str, Any]:
    """The rule's action: the envelope to the queue as is (not base64 again)."""
    return {"sqs": {"roleArn": role_arn, "queueUrl": queue_url, "useBase64": False}}


def rule_payload(forward: Forward, *, queue_url: str, role_arn: str) -> dict[str, Any]:
    """CreateTopicRule's topicRulePayload for one rule."""
    return {
        "sql": forward.sql,
        "description": f"fleetportal: {forward.topic_filter} to the portal's queue",
        "awsIotSqlVersion": SQL_VERSION,
        "ruleDisabled": False,
        "actions": [sqs_action(queue_url, role_arn)],
    }


def forwarded_message(topic: str, payload: bytes | dict, received_at_ms: int) -> str:
    """The SQS body a rule would send for `payload` published on `topic` (tests, benchmarks)."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    envelope = {
        "topic": topic,
        "payload": base64.b64encode(raw).decode("ascii"),
        "received_at": received_at_ms,
    }
    return orjson.dumps(envelope).decode()
