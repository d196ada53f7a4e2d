"""Devices on the AWS gateway and what AWS IoT's rules would put on the queue (moto runs no
rules: the tests send the rule's envelope with AWS's documented payloads inside)."""

import base64
import itertools
import time
from typing import Any

import orjson

from aws_gateway import client, consumer
from fleetportal import topics
from tests.aws.gateway_field import put_on_aws
from tests.conftest import make_device

_serial = itertools.count(1)


def aws_device(device_id: str | None = None, **fields):
    """A registered device on the AWS gateway with its thing on (moto's) AWS."""
    device = make_device(device_id or f"thing-{next(_serial):04d}", **fields)
    put_on_aws(device)
    client.client("iot").create_thing(thingName=device.device_id)
    return device


def make_queue(name: str = "fleetportal-reports") -> str:
    # Visibility 0: a message not deleted is received again at once (the redelivery tests).
    sqs = client.client("sqs")
    return sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]


def envelope(topic: str, payload: bytes | dict, received_ms: int | None = None) -> str:
    """The body the portal's rules send: the topic, the payload as published (base64) and
    AWS's receive time (aws_gateway.rules)."""
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return orjson.dumps(
        {
            "topic": topic,
            "payload": base64.b64encode(raw).decode(),
            "received_at": received_ms or int(time.time() * 1000),
        }
    ).decode()


def forward(queue_url: str, topic: str, payload: bytes | dict) -> None:
    client.client("sqs").send_message(QueueUrl=queue_url, MessageBody=envelope(topic, payload))


def documents(
    version: int,
    *,
    reported: dict | None = None,
    desired: dict | None = None,
    timestamp: int = 1_765_000_000,
) -> dict[str, Any]:
    """A shadow's update/documents message as AWS IoT publishes it (device-shadow-mqtt.html)."""
    state: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for part, values in (("desired", desired), ("reported", reported)):
        if values:
            state[part] = values
            metadata[part] = {key: {"timestamp": timestamp} for key in values}
    previous = {"state": {}, "metadata": {}, "version": version - 1}
    current = {"state": state, "metadata": metadata, "version": version}
    return {"previous": previous, "current": current, "timestamp": timestamp}


def documents_topic(thing: str, shadow: str = "") -> str:
    return topics.shadow_topic(thing, shadow, "update", "documents")


def drain(queue_url: str) -> consumer.Round:
    """One round of the consumer without waiting (moto answers at once)."""
    return consumer.consume(queue_url, wait=0)


def waiting(queue_url: str) -> int:
    attributes = client.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
