"""One accepted UPDATE from stored shadow to new shadow and replies (device-protocol.md §1.4)."""

from dataclasses import dataclass
from typing import Any

from shadows.document.request import UpdateRequest, check_version
from shadows.document.responses import (
    Shadow,
    accepted_document,
    delta_document,
    documents_document,
)
from shadows.document.state import check_size, merge_state


@dataclass(frozen=True)
class UpdateOutcome:
    """What to store and what to publish, in this order: accepted, documents, delta (if any)."""

    shadow: Shadow
    accepted: dict[str, Any]
    documents: dict[str, Any]
    delta: dict[str, Any] | None


def apply_update(
    current: Shadow | None,
    request: UpdateRequest,
    timestamp: int,
    *,
    deleted_version: int = 0,
) -> UpdateOutcome:
    """Check the version, merge, check the size and build the replies of one UPDATE.

    `current` is None when no shadow exists; `deleted_version` is then the version a shadow of the
    same name had when deleted within the last 48 h, which the new one carries on from (§1.1).
    Every accepted update bumps the version, a no-op one too (§8.3). Raises VersionConflict (409)
    or PayloadTooLarge (413) with the request's clientToken; nothing is changed then.
    """
    base_version = current.version if current is not None else deleted_version
    check_version(request, base_version)
    stored = current or Shadow(version=base_version)
    state, metadata = merge_state(stored.state, stored.metadata, request.state, timestamp)
    check_size(state, client_token=request.client_token)
    shadow = Shadow(state=state, metadata=metadata, version=base_version + 1)
    return UpdateOutcome(
        shadow=shadow,
        accepted=accepted_document(request, shadow.version, timestamp),
        documents=documents_document(current, shadow, timestamp, request.client_token),
        delta=delta_document(shadow, timestamp, request.client_token),
    )
