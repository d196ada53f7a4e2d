"""Where a refused shadow request (ShadowError) becomes an answer, in one place per transport.

- `http_error`: the status and body of every HTTP API (the integrators' REST API and the
  devices' HTTP data plane): AWS's error document, the code as the status (§1.7, §1.9).
- `rejected_document`: the body published on P/{operation}/rejected over MQTT (§0.1):
  `{"code", "message", "clientToken"?, "timestamp"}`.

The error classes and their codes and texts are pure and live in shadows.document.errors.
"""

from datetime import datetime
from typing import Any

from shadows.document import ShadowError, client_token_of, parse_request


def http_error(error: ShadowError, *, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(status, body). `now` adds AWS's `timestamp` (the device API, like AWS's data plane);
    the integrators' REST API answers without it."""
    return error.http_status, error.document(_epoch(now) if now is not None else None)


def rejected_document(error: ShadowError, *, now: datetime, payload: bytes = b"") -> dict:
    """The MQTT rejected document. A request refused before its clientToken was read (a
    version conflict, a missing thing) still echoes the token its raw payload carries."""
    if error.client_token is None:
        error.client_token = _token_of_raw(payload)
    return error.document(_epoch(now))


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _token_of_raw(payload: bytes) -> str | None:
    try:
        return client_token_of(parse_request(payload, allow_empty=True))
    except ShadowError:
        return None
