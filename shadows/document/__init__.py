"""The shadow document math as pure functions: no Django, no I/O (device-protocol.md §1, §8).

Typical UPDATE, in the order §1.4 suggests:

    request = validate_update(parse_request(payload))      # 415 / 400
    outcome = apply_update(stored, request, now)           # 409 / 413
    store outcome.shadow; publish outcome.accepted, outcome.documents, then outcome.delta if any

Every refusal is a ShadowError carrying AWS's code, exact message and the clientToken to echo.
"""

from shadows.document.errors import (
    InvalidRequest,
    PayloadTooLarge,
    ShadowError,
    ShadowNotFound,
    ThingNotFound,
    UnsupportedEncoding,
    VersionConflict,
)
from shadows.document.request import (
    MAX_CLIENT_TOKEN_BYTES,
    MAX_DEPTH,
    UpdateRequest,
    check_version,
    client_token_of,
    depth_of,
    parse_request,
    validate_update,
)
from shadows.document.responses import (
    Shadow,
    accepted_document,
    deleted_document,
    delta_document,
    documents_document,
    get_document,
)
from shadows.document.state import (
    MAX_STATE_BYTES,
    check_size,
    compute_delta,
    json_equal,
    merge_patch_between,
    merge_state,
    stamp,
    state_size,
)
from shadows.document.update import UpdateOutcome, apply_update

__all__ = [
    "MAX_CLIENT_TOKEN_BYTES",
    "MAX_DEPTH",
    "MAX_STATE_BYTES",
    "InvalidRequest",
    "PayloadTooLarge",
    "Shadow",
    "ShadowError",
    "ShadowNotFound",
    "ThingNotFound",
    "UnsupportedEncoding",
    "UpdateOutcome",
    "UpdateRequest",
    "VersionConflict",
    "accepted_document",
    "apply_update",
    "check_size",
    "check_version",
    "client_token_of",
    "compute_delta",
    "deleted_document",
    "delta_document",
    "depth_of",
    "documents_document",
    "get_document",
    "json_equal",
    "merge_patch_between",
    "merge_state",
    "parse_request",
    "stamp",
    "state_size",
    "validate_update",
]
