"""The documents the shadow service publishes or returns (device-protocol.md §1.2, §1.5, §1.6, §8).

Pure builders: they take the stored shadow, its version and the response timestamp (epoch seconds,
§0.5) and return plain dicts ready for orjson. `clientToken` appears only when the request had one.
"""

from dataclasses import dataclass, field
from typing import Any

from shadows.document.request import SECTIONS, UpdateRequest
from shadows.document.state import Metadata, State, compute_delta, stamp


@dataclass(frozen=True)
class Shadow:
    """One stored shadow document: state and metadata without empty sections, and its version."""

    state: State = field(default_factory=dict)
    metadata: Metadata = field(default_factory=dict)
    version: int = 0


def accepted_document(request: UpdateRequest, version: int, timestamp: int) -> dict[str, Any]:
    """`update/accepted`: the request's sections as sent, nulls included (§8.4), and a stamp for
    every key written or deleted. `"state": null` echoes as `null` with `metadata:
    {"timestamp"}`, as real AWS replies."""
    doc = {
        "state": request.state,
        "metadata": stamp(request.state, timestamp),
        "version": version,
        "timestamp": timestamp,
    }
    return _with_token(doc, request.client_token)


def documents_document(
    previous: Shadow | None, current: Shadow, timestamp: int, client_token: str | None
) -> dict[str, Any]:
    """`update/documents`: the whole shadow before and after; no `previous` when the update
    created the shadow (§1.5)."""
    doc: dict[str, Any] = {}
    if previous is not None:
        doc["previous"] = _snapshot(previous)
    doc["current"] = _snapshot(current)
    doc["timestamp"] = timestamp
    return _with_token(doc, client_token)


def delta_document(
    shadow: Shadow, timestamp: int, client_token: str | None
) -> dict[str, Any] | None:
    """`update/delta`: the entire current delta with desired-side stamps, or None when desired
    and reported agree, since no empty delta is ever sent (§1.6, §8.5)."""
    delta, delta_metadata = compute_delta(shadow.state, shadow.metadata)
    if not delta:
        return None
    doc = {
        "state": delta,
        "metadata": delta_metadata,
        "version": shadow.version,
        "timestamp": timestamp,
    }
    return _with_token(doc, client_token)


def get_document(shadow: Shadow, timestamp: int, client_token: str | None) -> dict[str, Any]:
    """`get/accepted` (and HTTP GET): the whole document; `delta` only when non-empty (§1.5)."""
    state, metadata = _sections(shadow.state), _sections(shadow.metadata)
    delta, delta_metadata = compute_delta(shadow.state, shadow.metadata)
    if delta:
        state["delta"], metadata["delta"] = delta, delta_metadata
    doc = {"state": state, "metadata": metadata, "version": shadow.version, "timestamp": timestamp}
    return _with_token(doc, client_token)


def deleted_document(version: int, timestamp: int, client_token: str | None) -> dict[str, Any]:
    """`delete/accepted`: the version the shadow had, not incremented (§1.2)."""
    return _with_token({"version": version, "timestamp": timestamp}, client_token)


def _snapshot(shadow: Shadow) -> dict[str, Any]:
    return {
        "state": _sections(shadow.state),
        "metadata": _sections(shadow.metadata),
        "version": shadow.version,
    }


def _sections(document: dict[str, Any]) -> dict[str, Any]:
    # Only desired and reported are ever stored or shown (§1.1); an empty one is left out.
    return {section: document[section] for section in SECTIONS if document.get(section)}


def _with_token(doc: dict[str, Any], client_token: str | None) -> dict[str, Any]:
    if client_token is not None:
        doc["clientToken"] = client_token
    return doc
