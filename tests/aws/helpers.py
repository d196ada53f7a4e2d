"""Helpers for the AWS gateway's tests: devices on the AWS gateway, and answers injected at
botocore's transport (the `before-send` event, inside botocore's retry loop) where moto cannot
give them: throttling, and the APIs moto lacks (recorded responses in AWS's documented shape)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from aws_gateway import client
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
