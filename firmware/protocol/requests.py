"""Reading a device's jobs request document (device-protocol.md §2.1, §2.2) — plain Python.

Every check here raises InvalidJson or InvalidRequest naming the field; nothing is read from or
written to the database. Fields AWS does not define are ignored, as AWS does.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from firmware.choices import ExecutionStatus
from firmware.errors import InvalidJson, InvalidRequest
from fleetportal import json_safety

MAX_CLIENT_TOKEN = 64
MAX_STATUS_DETAILS = 10
STATUS_DETAIL_KEY = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
MAX_STATUS_DETAIL_VALUE = 1024
STEP_TIMEOUT_RANGE = (1, 10080)  # minutes; -1 on update clears the step timer [OLD]
CLEAR_STEP_TIMER = -1
STATUSES = ExecutionStatus.values  # built once: Django makes the list anew on each access


@dataclass(frozen=True)
class StartNext:
    """A StartNextPendingJobExecution request, read and checked."""

    token: str | None
    details: dict[str, str] | None
    step: int | None
    asked: str  # digest: what a repeat of it asks too


@dataclass(frozen=True)
class Update:
    """An UpdateJobExecution request, read and checked."""

    token: str | None
    target: str
    details: dict[str, str] | None
    step: int | None
    expected: int | None
    number: int | None
    include_state: bool
    include_document: bool
    asked: str


def start_next(payload: bytes | str | dict) -> StartNext:
    """Read a start-next request; fields are checked in the order AWS reports them."""
    body = parse(payload)
    token = client_token(body)
    details = status_details(body)
    step = step_timeout(body, may_clear=False)
    return StartNext(token, details, step, digest("start-next", "", body))


def update(job_id: str, payload: bytes | str | dict) -> Update:
    """Read an update request of execution `job_id`."""
    body = parse(payload)
    token = client_token(body)
    target = status(body, STATUSES)
    details = status_details(body)
    step = step_timeout(body, may_clear=True)
    expected = expected_version(body)
    number = execution_number(body)
    include_state = flag(body, "includeJobExecutionState", False)
    include_document = flag(body, "includeJobDocument", False)
    asked = digest("update", job_id, body)
    return Update(
        token, target, details, step, expected, number, include_state, include_document, asked
    )


def parse(payload: bytes | str | dict) -> dict[str, Any]:
    """The request as a dict; an empty payload is an empty request."""
    if isinstance(payload, dict):
        body: Any = payload
    else:
        raw = payload.encode() if isinstance(payload, str) else payload
        if not raw.strip():
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidJson(f"The request is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidJson("The request must be a JSON object.")
    problem = json_safety.problem(body)
    if problem is not None:
        raise InvalidRequest(problem)
    return body


def client_token(body: dict[str, Any]) -> str | None:
    token = body.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_CLIENT_TOKEN:
        raise InvalidRequest(f"clientToken must be a string of 1 to {MAX_CLIENT_TOKEN} characters.")
    return token


def status_details(body: dict[str, Any]) -> dict[str, str] | None:
    """statusDetails: at most 10 string pairs, key [a-zA-Z0-9:_-]{1,128}, value 1-1024 characters
    without control characters (AWS's model: [^\\p{C}]+). None when the request leaves it out."""
    details = body.get("statusDetails")
    if details is None:
        return None
    if not isinstance(details, dict):
        raise InvalidRequest("statusDetails must be an object of string values.")
    if len(details) > MAX_STATUS_DETAILS:
        raise InvalidRequest(f"statusDetails has more than {MAX_STATUS_DETAILS} entries.")
    for key, value in details.items():
        if not STATUS_DETAIL_KEY.fullmatch(key):
            raise InvalidRequest(
                f"statusDetails key {key[:130]!r} must be 1 to 128 of [a-zA-Z0-9:_-]."
            )
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_STATUS_DETAIL_VALUE:
            raise InvalidRequest(
                f"statusDetails.{key} must be a string of 1 to {MAX_STATUS_DETAIL_VALUE} "
                "characters."
            )
        if any(unicodedata.category(char).startswith("C") for char in value):
            raise InvalidRequest(f"statusDetails.{key} contains a control character.")
    return details


def step_timeout(body: dict[str, Any], *, may_clear: bool) -> int | None:
    """stepTimeoutInMinutes: 1-10080, or -1 (clear the step timer) on update."""
    minutes = body.get("stepTimeoutInMinutes")
    if minutes is None:
        return None
    low, high = STEP_TIMEOUT_RANGE
    if _is_int(minutes) and (low <= minutes <= high or (may_clear and minutes == CLEAR_STEP_TIMER)):
        return minutes
    allowed = f"{low} to {high}" + (f", or {CLEAR_STEP_TIMER} to clear it" if may_clear else "")
    raise InvalidRequest(f"stepTimeoutInMinutes must be an integer from {allowed}.")


def expected_version(body: dict[str, Any]) -> int | None:
    """expectedVersion: an integer, or a string of digits (a C demo sends "2", §2.2)."""
    version = body.get("expectedVersion")
    if version is None:
        return None
    if isinstance(version, str) and version.isascii() and version.isdigit() and len(version) < 19:
        return int(version)
    if _is_int(version) and version >= 0:
        return version
    raise InvalidRequest("expectedVersion must be a non-negative integer.")


def execution_number(body: dict[str, Any]) -> int | None:
    number = body.get("executionNumber")
    if number is None:
        return None
    if _is_int(number) and number >= 1:
        return number
    raise InvalidRequest("executionNumber must be a positive integer.")


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false.")
    return value


def status(body: dict[str, Any], allowed: list[str]) -> str:
    value = body.get("status")
    if value is None:
        raise InvalidRequest("status is required.")
    if value not in allowed:
        raise InvalidRequest(f"status must be one of {', '.join(allowed)}.")
    return value


def digest(operation: str, job_id: str, body: dict[str, Any]) -> str:
    """What a request asks, without its clientToken: a repeat has the same digest."""
    asked = {k: v for k, v in body.items() if k != "clientToken"}
    data = orjson.dumps([operation, job_id, asked], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:32]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
