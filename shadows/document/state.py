"""Shadow state math: null-deleting merge, per-leaf metadata, delta and size (device-protocol.md
§1.4, §1.6, §1.8, §8).

A shadow's `state` is `{"desired": {...}, "reported": {...}}` and its `metadata` has the same shape,
with `{"timestamp": <epoch s>}` in place of every leaf. A section that is empty is left out of both.
Nothing here mutates its arguments; results share unchanged subtrees with the inputs, so treat them
as read-only (copy before editing in place).
"""

from typing import Any

import orjson

from shadows.document.errors import InvalidRequest, PayloadTooLarge
from shadows.document.request import SECTIONS

MAX_STATE_BYTES = 8192

State = dict[str, Any]
Metadata = dict[str, Any]


def merge_state(
    state: State, metadata: Metadata, patch: State | None, timestamp: int
) -> tuple[State, Metadata]:
    """Apply a validated request `state` to the stored state and metadata (§1.4).

    Per section: a null section removes it; an object merges key by key. Per key: null deletes
    the key and its metadata; an object merges into a stored object, or replaces anything else;
    a scalar or an array replaces the stored value whole. The merge is RFC 7386 (JSON Merge Patch):
    objects a deletion leaves empty stay (as AWS keeps them); only an emptied *section* goes away.
    Written leaves get `timestamp`; untouched leaves keep theirs. `patch=None` clears all (§8.10).
    """
    merged: State = {}
    merged_metadata: Metadata = {}
    if patch is None:
        return merged, merged_metadata
    for section in SECTIONS:
        values = state.get(section) or {}
        stamps = (metadata.get(section) or {}) if values else {}
        if section in patch:
            if patch[section] is None:
                continue
            values, stamps = _merge_object(values, stamps, patch[section], timestamp)
        if values:
            merged[section], merged_metadata[section] = values, stamps
    return merged, merged_metadata


def stamp(value: Any, timestamp: int) -> Any:
    """Metadata for a value as written: objects mirrored, every other value (arrays and nulls
    included, §8.6) one `{"timestamp"}`."""
    if isinstance(value, dict):
        return {key: stamp(child, timestamp) for key, child in value.items()}
    return {"timestamp": timestamp}


def compute_delta(state: State, metadata: Metadata | None = None) -> tuple[dict, dict]:
    """The delta of desired against reported, and its metadata (desired-side stamps) (§1.6).

    For every key in desired: absent from reported → included; both objects → recurse, included
    when the sub-delta is non-empty; otherwise included when the values differ. Arrays compare
    whole and are copied whole. Keys only in reported never appear.
    """
    desired_metadata = (metadata or {}).get("desired") or {}
    return _delta(state.get("desired") or {}, state.get("reported") or {}, desired_metadata)


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values: 1 == 1.0 as JSON numbers, but true is not 1 (Python says it is)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(json_equal(value, right[key]) for key, value in left.items())
        )
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(map(json_equal, left, right))
        )
    if isinstance(left, int | float):
        return isinstance(right, int | float) and left == right
    return type(left) is type(right) and left == right


def state_size(state: State) -> int:
    """What counts toward the 8 KB limit (§1.8): the bytes of the state object
    `{"desired":…,"reported":…}` as compact UTF-8 JSON (orjson, no whitespace, non-ASCII as raw
    UTF-8, empty sections left out). Metadata, version and the rest of the document don't count.
    """
    try:
        return len(orjson.dumps(state))
    except orjson.JSONEncodeError:
        # Only reachable from a caller that parsed JSON more leniently than parse_request
        # (lone surrogates, integers beyond 64 bits): not representable, so not valid here.
        raise InvalidRequest() from None


def check_size(state: State, *, client_token: str | None = None) -> None:
    """413 when the merged state is over MAX_STATE_BYTES; exactly MAX_STATE_BYTES is accepted."""
    size = state_size(state)
    if size > MAX_STATE_BYTES:
        raise PayloadTooLarge(size=size, client_token=client_token)


def _merge_object(
    values: dict, stamps: dict, patch: dict, timestamp: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    merged, merged_stamps = dict(values), dict(stamps)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
            merged_stamps.pop(key, None)
        elif isinstance(value, dict):
            stored = values.get(key)
            if isinstance(stored, dict):
                stored_stamps = stamps.get(key)
                if not isinstance(stored_stamps, dict):
                    stored_stamps = {}
                merged[key], merged_stamps[key] = _merge_object(
                    stored, stored_stamps, value, timestamp
                )
            else:
                merged[key], merged_stamps[key] = _merge_object({}, {}, value, timestamp)
        else:
            merged[key], merged_stamps[key] = value, {"timestamp": timestamp}
    return merged, merged_stamps


def _delta(desired: dict, reported: dict, stamps: Any) -> tuple[dict, dict]:
    delta: dict[str, Any] = {}
    delta_stamps: dict[str, Any] = {}
    for key, wanted in desired.items():
        key_stamps = stamps.get(key) if isinstance(stamps, dict) else None
        if key not in reported:
            delta[key] = wanted
        elif isinstance(wanted, dict) and isinstance(reported[key], dict):
            nested, nested_stamps = _delta(wanted, reported[key], key_stamps)
            if nested:
                delta[key], delta_stamps[key] = nested, nested_stamps
            continue
        elif not json_equal(wanted, reported[key]):
            delta[key] = wanted
        else:
            continue
        if key_stamps is not None:
            delta_stamps[key] = key_stamps
    return delta, delta_stamps


def merge_patch_between(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) taking `old` to `new`: removed keys become null.

    Lets an operator edit a whole desired state while the update still goes through the merge.
    """
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif isinstance(old[key], dict) and isinstance(value, dict):
            inner = merge_patch_between(old[key], value)
            if inner:
                patch[key] = inner
        elif old[key] != value or type(old[key]) is not type(value):
            patch[key] = value
    return patch
