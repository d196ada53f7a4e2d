"""Refused jobs requests (device-protocol.md §2.3) and where they become answers, in one place.

Services raise a JobsError subclass; this module turns it into
- `rejected_document`: the body published on J/…/rejected over MQTT (§0.6):
  `{"code": "<String enum>", "message", "clientToken"?, "timestamp", "executionState"?}`;
- `http_error`: the status and body of the HTTP device API (§2.3: 400 / 404 / 409 / 410 / 429 /
  503), the same document without the MQTT-only fields.
"""

from typing import Any


class JobsError(Exception):
    """A refused jobs request; `execution_state` (JobExecutionState) where AWS sends it."""

    code = "InternalError"
    http_status = 503

    def __init__(self, message: str, *, execution_state: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.execution_state = execution_state


class InvalidTopic(JobsError):
    code, http_status = "InvalidTopic", 400


class InvalidJson(JobsError):
    code, http_status = "InvalidJson", 400


class InvalidRequest(JobsError):
    code, http_status = "InvalidRequest", 400


class InvalidStateTransition(JobsError):
    code, http_status = "InvalidStateTransition", 409


class ResourceNotFound(JobsError):
    code, http_status = "ResourceNotFound", 404


class VersionMismatch(JobsError):
    code, http_status = "VersionMismatch", 409


class TerminalStateReached(JobsError):
    code, http_status = "TerminalStateReached", 410


class RequestThrottled(JobsError):
    code, http_status = "RequestThrottled", 429


class InternalError(JobsError):
    code, http_status = "InternalError", 503


def _body(error: JobsError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.execution_state is not None:
        body["executionState"] = error.execution_state
    return body


def rejected_document(error: JobsError, *, client_token: str | None, timestamp: int) -> dict:
    """The MQTT rejected document, echoing the request's clientToken (§0.1)."""
    body = _body(error)
    if client_token is not None:
        body["clientToken"] = client_token
    body["timestamp"] = timestamp
    return body


def http_error(error: JobsError) -> tuple[int, dict[str, Any]]:
    """(status, body) for the HTTP device API."""
    return error.http_status, _body(error)
