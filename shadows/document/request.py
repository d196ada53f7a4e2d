"""Reading and validating shadow request documents (device-protocol.md §1.3, §1.4, §8.1, §8.10).

Checks run in the order §1.4 suggests: UTF-8 (415), JSON (400), clientToken, the `state` node's
shape, depth and arrays, the version's type. The version *match* (409) needs the stored shadow and
is `check_version`; the size (413) needs the merged state and is `state.check_size`.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from fleetportal import json_safety
from shadows.document import errors
from shadows.document.errors import InvalidRequest, UnsupportedEncoding, VersionConflict

SECTIONS = ("desired", "reported")
MAX_DEPTH = 6
MAX_CLIENT_TOKEN_BYTES = 64


@dataclass(frozen=True)
class UpdateRequest:
    """A validated UPDATE: `state` as sent (None means clear everything, §8.10)."""

    state: dict[str, Any] | None
    client_token: str | None = None
    version: int | None = None


def parse_request(payload: bytes | str, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request object of an MQTT or HTTP body.

    Non-UTF-8 bytes give 415, anything that is not a JSON object gives 400 `Invalid JSON`.
    GET and DELETE may have an empty body (`allow_empty`), which reads as `{}` (§1.2).
    """
    if allow_empty and not payload.strip():
        return {}
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        # orjson refuses invalid UTF-8 too; tell the two apart only on this slow path.
        if isinstance(payload, bytes):
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                raise UnsupportedEncoding from None
        raise InvalidRequest(errors.INVALID_JSON) from None
    if not isinstance(document, dict):
        raise InvalidRequest(errors.INVALID_JSON)
    if json_safety.problem(document):
        # A NUL or a number beyond 64 bits could be stored but never sent back (orjson).
        raise InvalidRequest(errors.INVALID_NODE)
    return document


def client_token_of(document: Any) -> str | None:
    """The clientToken to echo, or None when absent or unusable (then nothing is echoed)."""
    if not isinstance(document, dict):
        return None
    token = document.get("clientToken")
    if isinstance(token, str) and _fits(token):
        return token
    return None


def validate_update(document: Any) -> UpdateRequest:
    """Check an UPDATE request document; raise InvalidRequest with AWS's message (§1.7).

    Keys outside `state`, `clientToken` and `version` are ignored, as AWS ignores them (§1.1).
    """
    if not isinstance(document, dict):
        raise InvalidRequest(errors.INVALID_JSON)
    token = document.get("clientToken")
    if token is not None and not (isinstance(token, str) and _fits(token)):
        raise InvalidRequest(errors.INVALID_CLIENT_TOKEN)
    try:
        state = _validated_state(document)
        version = _validated_version(document)
    except InvalidRequest as error:
        error.client_token = token
        raise
    return UpdateRequest(state=state, client_token=token, version=version)


def check_version(request: UpdateRequest, current: int) -> None:
    """Optimistic locking: a version in the request must equal the stored one (§1.3)."""
    if request.version is not None and request.version != current:
        raise VersionConflict(
            expected=request.version, current=current, client_token=request.client_token
        )


def depth_of(value: Any) -> int:
    """How many keys or indices the deepest value sits below `value` (a scalar or `{}` is 0).

    `{"a": {"b": 1}}` has depth 2. A desired or reported section may have depth MAX_DEPTH (§8.1).
    """
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=-1)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=-1)
    return 0


def _fits(token: str) -> bool:
    # The limit is in bytes, not characters (§1.3); the SDK's UUID4 tokens are 36 (§0.1).
    return len(token.encode("utf-8")) <= MAX_CLIENT_TOKEN_BYTES


def _validated_state(document: dict[str, Any]) -> dict[str, Any] | None:
    if "state" not in document:
        raise InvalidRequest(errors.MISSING_STATE)
    state = document["state"]
    if state is None:
        return None
    if not isinstance(state, dict):
        raise InvalidRequest(errors.STATE_NOT_OBJECT)
    for key in state:
        if key not in SECTIONS:
            # AWS names the node: "State contains an invalid node: 'delta'" (§1.1).
            raise InvalidRequest(f"{errors.INVALID_NODE}: '{key}'")
    for section, message in (
        ("desired", errors.DESIRED_NOT_OBJECT),
        ("reported", errors.REPORTED_NOT_OBJECT),
    ):
        if section in state and not isinstance(state[section], dict | None):
            raise InvalidRequest(message)
    null_at = None
    for section in SECTIONS:
        if isinstance(state.get(section), dict):
            below = _check_nesting(state[section], 0, in_array=False)
            if null_at is None and below is not None:
                null_at = [section, *below]
    if null_at is not None:
        raise InvalidRequest(f"{errors.INVALID_NODE}: '{_path_text(null_at)}'")
    return state


def _check_nesting(value: Any, level: int, *, in_array: bool) -> list[str | int] | None:
    """Raise when a value sits more than MAX_DEPTH keys below its section; find a null in an array.

    One walk does both. Depth wins over the null (§1.4 checks depth first), so the walk goes on
    after a null and the caller reports it only once the section is known to be shallow enough.
    Returns the path (keys and indices) of the first null inside an array, or None.
    """
    if isinstance(value, dict):
        children: list[tuple[str | int, Any]] = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
        in_array = True
    else:
        return [] if value is None and in_array else None
    if children and level >= MAX_DEPTH:
        raise InvalidRequest(errors.TOO_DEEP)
    found = None
    for key, child in children:
        below = _check_nesting(child, level + 1, in_array=in_array)
        if found is None and below is not None:
            found = [key, *below]
    return found


def _path_text(path: list[str | int]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)[1:]


def _validated_version(document: dict[str, Any]) -> int | None:
    version = document.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidRequest(errors.INVALID_VERSION)
    return version
