"""Helpers for the AWS gateway's tests:

- devices on the AWS gateway: `aws_device` (the registry's hooks sync its thing) and
  `aws_device_with_thing` (its thing already on moto, moved to AWS without the hooks: the state
  part's tests);
- answers injected at botocore's transport (the `before-send` event, inside botocore's retry
  loop) where moto cannot give them: throttling, and the APIs moto lacks (recorded responses in
  AWS's documented shape);
- `manage.py aws_setup`'s output (`setup_output`), and every call a client makes (`calls_to`);
- what AWS IoT's rules would put on the queue (moto runs no rules: the tests send the rule's
  envelope with AWS's documented payloads inside).
"""

from __future__ import annotations

import base64
import io
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from django.core.management import call_command

from aws_gateway import client, consumer
from fleetportal import topics
from tests.aws.gateway_field import put_on_aws
from tests.conftest import make_device


def aws_device(device_id: str | None = None, **fields):
    return make_device(device_id, gateway="aws", **fields)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs) -> Iterator[bytes]:
        yield self.data


def response(status: int, body: dict, error: str = "") -> AWSResponse:
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/json"
    if error:
        headers["x-amzn-ErrorType"] = error
    return AWSResponse("https://iot.invalid/", status, headers, _Body(orjson.dumps(body)))


def throttled() -> AWSResponse:
    """AWS IoT's answer to a call over its rate: HTTP 429, ThrottlingException."""
    return response(429, {"message": "Rate exceeded"}, "ThrottlingException")


class Injection:
    """Answers for one operation: `answers` are used one per call, then calls reach moto."""

    def __init__(self, answers: list[Callable[[], AWSResponse]] | None, forever=None) -> None:
        self.answers = list(answers or [])
        self.forever = forever
        self.calls = 0

    def __call__(self, request, **kwargs):
        self.calls += 1
        if self.answers:
            return self.answers.pop(0)()
        return self.forever() if self.forever else None


@contextmanager
def injected(service: str, operation: str, injection: Injection) -> Iterator[Injection]:
    meta = client.client(service).meta
    event = f"before-send.{meta.service_model.service_id.hyphenize()}.{operation}"
    events = meta.events
    events.register(event, injection)
    try:
        yield injection
    finally:
        events.unregister(event, injection)


@contextmanager
def calls_to(service: str) -> Iterator[list[tuple[str, dict]]]:
    """Every operation the service's client calls meanwhile, with its parameters."""
    seen: list[tuple[str, dict]] = []

    def record(model, params, **kwargs):
        seen.append((model.name, params))

    events = client.client(service).meta.events
    events.register(f"before-call.{service}", record)
    try:
        yield seen
    finally:
        events.unregister(f"before-call.{service}", record)


ROLE = "arn:aws:iam::123456789012:role/fleetportal-rules"
# moto implements neither DescribeEventConfigurations nor UpdateEventConfigurations: AWS's
# documented responses, recorded (AWS IoT API reference).
EVENTS_OFF = {"eventConfigurations": {"JOB_EXECUTION": {"Enabled": False}}, "creationDate": 0}
EVENTS_ON = {"eventConfigurations": {"JOB_EXECUTION": {"Enabled": True}}, "creationDate": 0}


def setup_output(configured: dict) -> str:
    """`manage.py aws_setup`'s output, with the event configuration answered as `configured`."""
    out = io.StringIO()
    describe = Injection([], forever=lambda: response(200, configured))
    update = Injection([], forever=lambda: response(200, {}))
    with (
        injected("iot", "DescribeEventConfigurations", describe),
        injected("iot", "UpdateEventConfigurations", update),
    ):
        call_command("aws_setup", stdout=out)
    return out.getvalue()


_serial = itertools.count(1)


def aws_device_with_thing(device_id: str | None = None, **fields):
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
    AWS's receive time (aws_gateway.rule)."""
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
