"""The reply a device gets when the portal fails on its request, so it never waits in silence.

AWS answers an internal failure on the request's `…/rejected` topic, echoing the clientToken
(device-protocol.md §1.7: 500 "Internal service failure"). Apps pass one of these builders as
`failure_reply` when they register a handler with the router.
"""

import time
from typing import Any

import orjson

from fleetportal import topics
from fleetportal.bridge.router import FailureReply, InboundMessage

INTERNAL_FAILURE = "Internal service failure"
MAX_CLIENT_TOKEN_BYTES = 64


def client_token(payload: bytes) -> str | None:
    """The request's clientToken if it has a usable one (a string of at most 64 bytes)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    token = body.get("clientToken") if isinstance(body, dict) else None
    if (
        isinstance(token, str)
        and len(token.encode("utf-8", "surrogatepass")) <= MAX_CLIENT_TOKEN_BYTES
    ):
        return token
    return None


def internal_error(code: Any = 500) -> FailureReply:
    """{"code", "message", "clientToken"?, "timestamp"} on the rejected topic (shadow style)."""

    def build(message: InboundMessage) -> tuple[str, dict]:
        document: dict[str, Any] = {"code": code, "message": INTERNAL_FAILURE}
        token = client_token(message.payload)
        if token is not None:
            document["clientToken"] = token
        document["timestamp"] = int(time.time())
        return topics.rejected(message.topic), document

    return build
