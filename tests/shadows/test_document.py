"""The shadow document math: validation, merge, metadata, delta, limits and reply documents.

Examples pin each rule of device-protocol.md §1 and §8; the hypothesis properties at the end check
merge + delta against a second, deliberately plain implementation written here.
"""

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadows.document import (
    MAX_DEPTH,
    MAX_STATE_BYTES,
    InvalidRequest,
    PayloadTooLarge,
    Shadow,
    ShadowError,
    ShadowNotFound,
    ThingNotFound,
    UnsupportedEncoding,
    UpdateRequest,
    VersionConflict,
    apply_update,
    check_version,
    client_token_of,
    compute_delta,
    deleted_document,
    delta_document,
    depth_of,
    get_document,
    json_equal,
    merge_patch_between,
    merge_state,
    parse_request,
    state_size,
    validate_update,
)

T0, T1, T2 = 1747330000, 1747330244, 1747330311


def update(current, document, timestamp=T1, **kwargs):
    return apply_update(current, validate_update(document), timestamp, **kwargs)


def shadow_with(state, timestamp=T0, version=1):
    """A stored shadow as an earlier update would have left it."""
    values, metadata = merge_state({}, {}, state, timestamp)
    return Shadow(state=values, metadata=metadata, version=version)


def refusal(document):
    with pytest.raises(ShadowError) as caught:
        validate_update(document)
    return caught.value.code, caught.value.message


def nested(depth, leaf=1):
    """{"k1": {"k2": ... {"k<depth>": leaf}}}: `leaf` sits `depth` keys below the section."""
    value = leaf
    for level in range(depth, 0, -1):
        value = {f"k{level}": value}
    return value


# --- reading the payload (§1.4 order: 415, then 400) ---------------------------------------------


def test_rejects_a_payload_that_is_not_utf8_with_415():
    with pytest.raises(UnsupportedEncoding) as caught:
        parse_request(b'{"state": {"reported": {"name": "\xff"}}}')

    assert caught.value.code == 415
    assert caught.value.message == "Unsupported documented encoding; supported encoding is UTF-8"


@pytest.mark.parametrize("payload", [b"{not json", b"", b"[1, 2]", b'"state"', b"null"])
def test_rejects_a_payload_that_is_not_a_json_object_as_invalid_json(payload):
    with pytest.raises(InvalidRequest) as caught:
        parse_request(payload)

    assert (caught.value.code, caught.value.message) == (400, "Invalid JSON")


def test_reads_an_empty_get_or_delete_body_as_an_empty_request():
    assert parse_request(b"", allow_empty=True) == {}
    assert parse_request(b'{"clientToken": "t-1"}', allow_empty=True) == {"clientToken": "t-1"}


def test_reads_a_utf8_payload_given_as_text_or_bytes():
    assert parse_request('{"state": {"reported": {"city": "Zürich"}}}') == parse_request(
        '{"state": {"reported": {"city": "Zürich"}}}'.encode()
    )


# --- validating UPDATE (§1.3, §1.7, §8.1, §8.10) -------------------------------------------------


def test_accepts_desired_and_reported_together_with_token_and_version():
    request = validate_update(
        {"state": {"desired": {"a": 1}, "reported": {"a": 2}}, "clientToken": "t", "version": 4}
    )

    assert request == UpdateRequest(
        state={"desired": {"a": 1}, "reported": {"a": 2}}, client_token="t", version=4
    )


def test_rejects_an_update_without_state():
    assert refusal({"desired": {"a": 1}}) == (400, "Missing required node: state")


@pytest.mark.parametrize("state", ["on", 3, [], True])
def test_rejects_a_state_that_is_not_an_object(state):
    assert refusal({"state": state}) == (400, "State node must be an object")


def test_accepts_a_null_state_meaning_clear_everything():
    assert validate_update({"state": None}).state is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("desired", "Desired node must be an object"),
        ("reported", "Reported node must be an object"),
    ],
)
@pytest.mark.parametrize("value", ["red", 0, [1], False])
def test_rejects_a_section_that_is_not_an_object(section, message, value):
    assert refusal({"state": {section: value}}) == (400, message)


def test_accepts_null_sections():
    request = validate_update({"state": {"desired": None, "reported": None}})

    assert request.state == {"desired": None, "reported": None}


@pytest.mark.parametrize("node", ["delta", "metadata", "Desired"])
def test_rejects_any_other_node_inside_state_naming_it(node):
    assert refusal({"state": {"reported": {}, node: {}}}) == (
        400,
        f"State contains an invalid node: '{node}'",
    )


def test_ignores_unknown_keys_outside_state():
    request = validate_update(
        {"state": {"reported": {"a": 1}}, "metadata": {"x": 1}, "timestamp": 5, "extra": [None]}
    )

    assert request.state == {"reported": {"a": 1}}


@pytest.mark.parametrize(
    ("state", "where"),
    [
        ({"desired": {"colors": [None, "RED", "GREEN"]}}, "desired.colors[0]"),
        ({"reported": {"grid": [[1], [2, None]]}}, "reported.grid[1][1]"),
        ({"reported": {"rows": [{"id": 1, "note": None}]}}, "reported.rows[0].note"),
    ],
)
def test_rejects_arrays_containing_null_naming_where(state, where):
    assert refusal({"state": state}) == (400, f"State contains an invalid node: '{where}'")


def test_accepts_null_members_outside_arrays_as_deletions():
    assert validate_update({"state": {"desired": {"a": {"b": None}, "c": None}}})


def test_accepts_a_section_exactly_six_levels_deep():
    section = nested(MAX_DEPTH)

    assert depth_of(section) == 6
    assert validate_update({"state": {"reported": section}})


@pytest.mark.parametrize("leaf", [1, None, [], {}])
def test_accepts_any_value_at_the_sixth_level_that_has_nothing_below_it(leaf):
    assert validate_update({"state": {"desired": nested(6, leaf)}})


@pytest.mark.parametrize("leaf", [{"k7": 1}, {"k7": {}}, [1], [[]]])
def test_rejects_a_seventh_level_key_or_array_index(leaf):
    assert refusal({"state": {"desired": nested(6, leaf)}}) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )


def test_depth_counts_array_nesting_like_object_nesting():
    assert validate_update({"state": {"reported": {"a": [[[[[1]]]]]}}})
    assert refusal({"state": {"reported": {"a": [[[[[[1]]]]]]}}})[0] == 400


def test_depth_is_reported_before_a_null_in_an_array():
    state = {"desired": {"a": [None]}, "reported": nested(7)}

    assert refusal({"state": state}) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )


def test_accepts_a_client_token_of_64_bytes():
    assert validate_update({"state": {}, "clientToken": "x" * 64}).client_token == "x" * 64
    assert validate_update({"state": {}, "clientToken": "é" * 32}).client_token == "é" * 32


@pytest.mark.parametrize("token", ["x" * 65, "é" * 33, 17, ["t"], {"t": 1}])
def test_rejects_a_client_token_over_64_bytes_or_not_a_string(token):
    assert refusal({"state": {}, "clientToken": token}) == (400, "Invalid clientToken")


def test_a_refusal_carries_the_client_token_to_echo():
    with pytest.raises(InvalidRequest) as caught:
        validate_update({"state": "on", "clientToken": "c-1"})

    assert caught.value.client_token == "c-1"
    assert caught.value.document() == {
        "code": 400,
        "message": "State node must be an object",
        "clientToken": "c-1",
    }


def test_an_unusable_client_token_is_not_echoed():
    with pytest.raises(InvalidRequest) as caught:
        validate_update({"state": {}, "clientToken": "x" * 65})

    assert caught.value.document(timestamp=T1) == {
        "code": 400,
        "message": "Invalid clientToken",
        "timestamp": T1,
    }
    assert client_token_of({"clientToken": "x" * 65}) is None
    assert client_token_of({"clientToken": "ok"}) == "ok"
    assert client_token_of(["clientToken"]) is None


@pytest.mark.parametrize("version", ["3", 1.5, 2.0, True, -1, [3], {}])
def test_rejects_a_version_that_is_not_a_non_negative_integer(version):
    assert refusal({"state": {}, "version": version}) == (400, "Invalid version")


def test_treats_a_null_version_as_no_version():
    assert validate_update({"state": {}, "version": None}).version is None


def test_rejects_update_with_stale_version():
    request = validate_update({"state": {}, "version": 6, "clientToken": "c"})

    with pytest.raises(VersionConflict) as caught:
        check_version(request, current=7)

    error = caught.value
    assert (error.code, error.message, error.expected, error.current) == (
        409,
        "Version conflict",
        6,
        7,
    )
    assert error.document() == {"code": 409, "message": "Version conflict", "clientToken": "c"}


def test_accepts_the_matching_version_or_none():
    check_version(validate_update({"state": {}, "version": 7}), current=7)
    check_version(validate_update({"state": {}}), current=7)


def test_not_found_messages_name_the_shadow_or_say_thing():
    assert ShadowNotFound("HelloWorld", client_token="c").document() == {
        "code": 404,
        "message": "No shadow exists with name: 'HelloWorld'",
        "clientToken": "c",
    }
    assert (ThingNotFound().code, ThingNotFound().message) == (404, "Thing not found")


# --- merging (§1.4) ------------------------------------------------------------------------------


def test_update_changes_only_the_keys_it_names():
    stored = shadow_with({"reported": {"a": 1, "b": {"c": 2, "d": 3}}})

    merged, _ = merge_state(stored.state, stored.metadata, {"reported": {"b": {"c": 9}}}, T1)

    assert merged == {"reported": {"a": 1, "b": {"c": 9, "d": 3}}}


def test_null_deletes_the_key_and_its_metadata():
    stored = shadow_with({"desired": {"color": "RED", "mode": "eco"}})

    merged, metadata = merge_state(stored.state, stored.metadata, {"desired": {"color": None}}, T1)

    assert merged == {"desired": {"mode": "eco"}}
    assert metadata == {"desired": {"mode": {"timestamp": T0}}}


def test_deleting_the_last_nested_key_leaves_the_parent_as_an_empty_object():
    stored = shadow_with({"desired": {"mystate": {"mysub": "123"}, "other": 1}})

    merged, metadata = merge_state(
        stored.state, stored.metadata, {"desired": {"mystate": {"mysub": None}}}, T1
    )

    assert merged == {"desired": {"mystate": {}, "other": 1}}
    assert metadata == {"desired": {"mystate": {}, "other": {"timestamp": T0}}}


def test_a_section_left_empty_disappears():
    stored = shadow_with({"desired": {"color": "RED"}, "reported": {"color": "RED"}})

    merged, metadata = merge_state(stored.state, stored.metadata, {"desired": {"color": None}}, T1)

    assert merged == {"reported": {"color": "RED"}}
    assert set(metadata) == {"reported"}


def test_a_null_section_removes_it_whole():
    stored = shadow_with({"desired": {"a": {"b": 1}}, "reported": {"a": 2}})

    merged, metadata = merge_state(
        stored.state, stored.metadata, {"reported": {"a": 3}, "desired": None}, T1
    )

    assert merged == {"reported": {"a": 3}}
    assert metadata == {"reported": {"a": {"timestamp": T1}}}


def test_a_null_state_clears_desired_and_reported():
    stored = shadow_with({"desired": {"a": 1}, "reported": {"b": 2}})

    assert merge_state(stored.state, stored.metadata, None, T1) == ({}, {})


def test_an_empty_state_changes_nothing():
    stored = shadow_with({"desired": {"a": 1}})

    assert merge_state(stored.state, stored.metadata, {}, T1) == (stored.state, stored.metadata)
    assert merge_state(stored.state, stored.metadata, {"desired": {}}, T1)[0] == stored.state


def test_an_array_replaces_the_stored_array_whole():
    stored = shadow_with({"desired": {"colors": ["RED", "GREEN", "BLUE"]}})

    merged, metadata = merge_state(
        stored.state, stored.metadata, {"desired": {"colors": ["RED"]}}, T1
    )

    assert merged == {"desired": {"colors": ["RED"]}}
    assert metadata == {"desired": {"colors": {"timestamp": T1}}}


@pytest.mark.parametrize(
    ("before", "patch", "after"),
    [
        ({"a": 5}, {"a": {"x": 1}}, {"a": {"x": 1}}),
        ({"a": {"x": 1}}, {"a": 5}, {"a": 5}),
        ({"a": {"x": 1}}, {"a": [1, {"x": 2}]}, {"a": [1, {"x": 2}]}),
        ({"a": [1]}, {"a": {"y": 2}}, {"a": {"y": 2}}),
    ],
)
def test_a_value_of_another_type_replaces_the_stored_one(before, patch, after):
    stored = shadow_with({"reported": before})

    merged, _ = merge_state(stored.state, stored.metadata, {"reported": patch}, T1)

    assert merged == {"reported": after}


def test_nulls_inside_a_new_object_are_dropped_not_stored():
    # RFC 7386: a new object is merged into {}, so its nulls delete nothing and store nothing.
    stored = shadow_with({"reported": {"a": 5}})

    merged, metadata = merge_state(
        stored.state,
        stored.metadata,
        {"reported": {"a": {"x": None, "y": 1}, "b": {"z": None}}},
        T1,
    )

    assert merged == {"reported": {"a": {"y": 1}, "b": {}}}
    assert metadata == {"reported": {"a": {"y": {"timestamp": T1}}, "b": {}}}


def test_written_leaves_get_the_new_timestamp_and_others_keep_theirs():
    stored = shadow_with({"reported": {"temp": 20, "fan": {"speed": 1, "mode": "auto"}}})

    _, metadata = merge_state(
        stored.state, stored.metadata, {"reported": {"fan": {"speed": 2}}}, T1
    )

    assert metadata == {
        "reported": {
            "temp": {"timestamp": T0},
            "fan": {"speed": {"timestamp": T1}, "mode": {"timestamp": T0}},
        }
    }


def test_merge_leaves_its_inputs_untouched():
    stored = shadow_with({"desired": {"a": {"b": 1}, "c": [1]}})
    state, metadata = copy.deepcopy(stored.state), copy.deepcopy(stored.metadata)
    patch = {"desired": {"a": {"b": None, "d": 2}, "c": None}}

    merge_state(stored.state, stored.metadata, patch, T1)

    assert (stored.state, stored.metadata) == (state, metadata)
    assert patch == {"desired": {"a": {"b": None, "d": 2}, "c": None}}


# --- delta (§1.6) --------------------------------------------------------------------------------


def test_delta_of_the_aws_guide_example():
    stored = shadow_with(
        {
            "desired": {"color": "RED", "state": "STOP"},
            "reported": {"color": "GREEN", "engine": "ON"},
        }
    )

    assert compute_delta(stored.state, stored.metadata) == (
        {"color": "RED", "state": "STOP"},
        {"color": {"timestamp": T0}, "state": {"timestamp": T0}},
    )


def test_nested_differences_keep_the_path_from_the_root():
    state = {
        "desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}},
        "reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}},
    }

    assert compute_delta(state)[0] == {"lights": {"color": {"g": 255}}}


def test_arrays_compare_whole_and_the_whole_desired_array_is_copied():
    state = {"desired": {"seq": [1, 2, 3], "same": [1, {"a": 2}]}}
    state["reported"] = {"seq": [1, 2], "same": [1, {"a": 2}]}

    assert compute_delta(state)[0] == {"seq": [1, 2, 3]}


def test_keys_only_in_reported_never_appear():
    assert compute_delta({"desired": {"a": 1}, "reported": {"a": 1, "b": 2}})[0] == {}


def test_a_desired_object_against_a_reported_scalar_is_copied_whole():
    state = {"desired": {"a": {"x": 1, "y": 2}}, "reported": {"a": 3}}

    assert compute_delta(state)[0] == {"a": {"x": 1, "y": 2}}


def test_a_desired_empty_object_missing_from_reported_is_in_the_delta():
    state = {"desired": {"a": {}, "b": {}}, "reported": {"b": {"x": 1}}}

    assert compute_delta(state)[0] == {"a": {}}


def test_a_key_deleted_from_reported_but_still_desired_reappears():
    stored = shadow_with({"desired": {"lock": "open"}, "reported": {"lock": "open"}})
    assert compute_delta(stored.state)[0] == {}

    outcome = update(stored, {"state": {"reported": {"lock": None}}})

    assert outcome.delta["state"] == {"lock": "open"}


def test_numbers_compare_as_json_numbers_and_booleans_are_not_numbers():
    assert compute_delta({"desired": {"t": 20}, "reported": {"t": 20.0}})[0] == {}
    assert compute_delta({"desired": {"on": True}, "reported": {"on": 1}})[0] == {"on": True}
    assert compute_delta({"desired": {"l": [0]}, "reported": {"l": [False]}})[0] == {"l": [0]}
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal("1", 1)
    assert not json_equal(None, False)


def test_delta_metadata_holds_the_desired_side_timestamps():
    stored = shadow_with({"desired": {"fan": {"speed": 3, "mode": "auto"}}})
    stored = update(stored, {"state": {"desired": {"fan": {"speed": 4}}}}, timestamp=T1).shadow
    stored = update(stored, {"state": {"reported": {"fan": {"mode": "auto"}}}}, timestamp=T2).shadow

    assert compute_delta(stored.state, stored.metadata) == (
        {"fan": {"speed": 4}},
        {"fan": {"speed": {"timestamp": T1}}},
    )


# --- size (§1.8) ---------------------------------------------------------------------------------


def test_size_counts_the_compact_utf8_json_of_the_state_object():
    assert state_size({"desired": {"a": 1}}) == len(b'{"desired":{"a":1}}')
    assert state_size({"reported": {"city": "Zürich"}}) == len(
        '{"reported":{"city":"Zürich"}}'.encode()
    )
    assert state_size({}) == 2


def padded(total_bytes):
    """A reported section whose state is exactly `total_bytes` long."""
    filler = total_bytes - state_size({"reported": {"pad": ""}})
    return {"reported": {"pad": "x" * filler}}


def test_accepts_a_merged_state_of_exactly_8192_bytes():
    state = padded(8192)

    outcome = update(None, {"state": state})

    assert state_size(outcome.shadow.state) == MAX_STATE_BYTES == 8192


def test_rejects_a_merged_state_of_8193_bytes_with_413():
    with pytest.raises(PayloadTooLarge) as caught:
        update(None, {"state": padded(8193), "clientToken": "big"})

    error = caught.value
    assert (error.code, error.message, error.size) == (
        413,
        "The payload exceeds the maximum size allowed",
        8193,
    )
    assert error.document()["clientToken"] == "big"


def test_a_small_update_is_refused_when_the_stored_state_is_already_near_the_limit():
    stored = shadow_with(padded(8190))

    with pytest.raises(PayloadTooLarge):
        update(stored, {"state": {"desired": {"x": 1}}})


def test_metadata_does_not_count_toward_the_limit():
    # 800 keys: their metadata alone is far over 8 KB; the state is just under.
    keys = {f"{index:03x}": 0 for index in range(800)}
    shadow = update(None, {"state": {"reported": keys}}).shadow

    assert state_size(shadow.state) <= MAX_STATE_BYTES < len(json.dumps(shadow.metadata))


# --- reply documents (§1.5, §1.6, §8) ------------------------------------------------------------


def test_accepted_echoes_the_request_sections_as_sent_including_nulls():
    stored = shadow_with({"desired": {"color": "RED", "mode": "eco"}})

    outcome = update(
        stored,
        {"state": {"desired": {"color": None, "fan": [1, 2]}}, "clientToken": "17c3", "x": 1},
    )

    assert outcome.accepted == {
        "state": {"desired": {"color": None, "fan": [1, 2]}},
        "metadata": {"desired": {"color": {"timestamp": T1}, "fan": {"timestamp": T1}}},
        "version": 2,
        "timestamp": T1,
        "clientToken": "17c3",
    }


def test_accepted_of_the_aws_example_has_no_client_token_when_none_was_sent():
    outcome = update(shadow_with({}, version=6), {"state": {"reported": {"Status": "Awful"}}})

    assert outcome.accepted == {
        "state": {"reported": {"Status": "Awful"}},
        "metadata": {"reported": {"Status": {"timestamp": T1}}},
        "version": 7,
        "timestamp": T1,
    }


def test_accepted_for_a_null_state_matches_aws():
    outcome = update(shadow_with({"reported": {"a": 1}}, version=17), {"state": None})

    assert outcome.accepted == {
        "state": None,
        "metadata": {"timestamp": T1},
        "version": 18,
        "timestamp": T1,
    }
    assert outcome.shadow == Shadow(state={}, metadata={}, version=18)


def test_the_first_update_creates_version_1_and_documents_has_no_previous():
    outcome = update(None, {"state": {"reported": {"a": 1}}, "clientToken": "c"})

    assert outcome.shadow.version == 1
    assert outcome.documents == {
        "current": {
            "state": {"reported": {"a": 1}},
            "metadata": {"reported": {"a": {"timestamp": T1}}},
            "version": 1,
        },
        "timestamp": T1,
        "clientToken": "c",
    }


def test_documents_carries_previous_and_current():
    stored = shadow_with({"desired": {"a": 1}}, version=4)

    outcome = update(stored, {"state": {"reported": {"a": 1}}})

    assert outcome.documents == {
        "previous": {
            "state": {"desired": {"a": 1}},
            "metadata": {"desired": {"a": {"timestamp": T0}}},
            "version": 4,
        },
        "current": {
            "state": {"desired": {"a": 1}, "reported": {"a": 1}},
            "metadata": {"desired": {"a": {"timestamp": T0}}, "reported": {"a": {"timestamp": T1}}},
            "version": 5,
        },
        "timestamp": T1,
    }


def test_a_recreated_shadow_carries_on_from_the_deleted_version():
    outcome = update(None, {"state": {"reported": {"a": 1}}, "version": 9}, deleted_version=9)

    assert outcome.shadow.version == 10
    assert "previous" not in outcome.documents


def test_a_no_op_update_still_bumps_the_version():
    stored = shadow_with({"reported": {"a": 1}}, version=3)

    outcome = update(stored, {"state": {}})

    assert outcome.shadow == Shadow(state=stored.state, metadata=stored.metadata, version=4)


def test_a_reported_only_update_publishes_the_whole_current_delta():
    stored = shadow_with({"desired": {"status": "Good", "fan": 2}, "reported": {"fan": 1}})

    outcome = update(stored, {"state": {"reported": {"status": "Awful"}}, "clientToken": "c"})

    assert outcome.delta == {
        "state": {"status": "Good", "fan": 2},
        "metadata": {"status": {"timestamp": T0}, "fan": {"timestamp": T0}},
        "version": 2,
        "timestamp": T1,
        "clientToken": "c",
    }


def test_no_delta_is_published_when_reported_catches_up_and_desired_stays():
    stored = shadow_with({"desired": {"lock": "unlock"}, "reported": {"lock": "locked"}})

    outcome = update(stored, {"state": {"reported": {"lock": "unlock"}}})

    assert outcome.delta is None
    assert outcome.shadow.state["desired"] == {"lock": "unlock"}


def test_a_refused_update_changes_nothing():
    stored = shadow_with({"desired": {"a": 1}}, version=2)
    before = copy.deepcopy(stored)

    with pytest.raises(VersionConflict):
        update(stored, {"state": {"desired": {"a": 2}}, "version": 1})

    assert stored == before


def test_get_shows_delta_only_when_non_empty():
    in_sync = shadow_with({"desired": {"a": 1}, "reported": {"a": 1}}, version=9)
    apart = shadow_with({"desired": {"a": 2}, "reported": {"a": 1, "b": 0}}, version=9)

    assert get_document(in_sync, T2, "c") == {
        "state": {"desired": {"a": 1}, "reported": {"a": 1}},
        "metadata": {"desired": {"a": {"timestamp": T0}}, "reported": {"a": {"timestamp": T0}}},
        "version": 9,
        "timestamp": T2,
        "clientToken": "c",
    }
    assert get_document(apart, T2, None) == {
        "state": {"desired": {"a": 2}, "reported": {"a": 1, "b": 0}, "delta": {"a": 2}},
        "metadata": {
            "desired": {"a": {"timestamp": T0}},
            "reported": {"a": {"timestamp": T0}, "b": {"timestamp": T0}},
            "delta": {"a": {"timestamp": T0}},
        },
        "version": 9,
        "timestamp": T2,
    }


def test_get_of_an_emptied_shadow_is_an_empty_document():
    assert get_document(Shadow(version=3), T2, None) == {
        "state": {},
        "metadata": {},
        "version": 3,
        "timestamp": T2,
    }


def test_delta_document_is_none_when_in_sync():
    assert (
        delta_document(shadow_with({"desired": {"a": [1]}, "reported": {"a": [1]}}), T1, None)
        is None
    )


def test_delete_accepted_carries_the_version_unchanged_and_the_token():
    assert deleted_document(7, T2, "c") == {"version": 7, "timestamp": T2, "clientToken": "c"}
    assert deleted_document(7, T2, None) == {"version": 7, "timestamp": T2}


# --- properties ----------------------------------------------------------------------------------
#
# The oracle below is written apart from shadows.document on purpose: RFC 7386's MergePatch
# pseudo-code on deep copies, and a delta that compares canonical JSON text.


def oracle_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = oracle_merge_patch(result.get(key), value)
    return result


def oracle_merge(state, patch):
    if patch is None:
        return {}
    result = {}
    for section in ("desired", "reported"):
        value = state.get(section, {})
        if section in patch:
            value = {} if patch[section] is None else oracle_merge_patch(value, patch[section])
        if value:
            result[section] = value
    return result


def canonical(value):
    """JSON text in which 2.0 and 2 read the same and true stays true."""

    def numbers(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: numbers(c) for k, c in v.items()}
        if isinstance(v, list):
            return [numbers(c) for c in v]
        return v

    return json.dumps(numbers(value), sort_keys=True)


def oracle_delta(desired, reported):
    delta = {}
    for key in desired:
        if key not in reported:
            delta[key] = desired[key]
        elif type(desired[key]) is dict and type(reported[key]) is dict:
            inner = oracle_delta(desired[key], reported[key])
            if inner:
                delta[key] = inner
        elif canonical(desired[key]) != canonical(reported[key]):
            delta[key] = desired[key]
    return delta


def exact(value):
    return json.dumps(value, sort_keys=True)


keys = st.sampled_from(["a", "b", "timestamp", "é"]) | st.text(max_size=2)
# A small pool makes equal and almost-equal values (1, 1.0, true) meet often.
scalars = st.sampled_from([0, 1, 1.0, 0.0, True, False, "1", ""]) | st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
sections = st.dictionaries(keys, json_values, max_size=4)
states = st.fixed_dictionaries({}, optional={"desired": sections, "reported": sections})
patch_values = st.recursive(
    scalars | st.none() | st.lists(json_values, max_size=3),
    lambda children: st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)


@st.composite
def patches(draw):
    """Request states; a null state or section wipes a lot, so it comes only now and then."""
    if draw(st.integers(0, 19)) == 0:
        return None
    patch = {}
    for section in ("desired", "reported"):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            patch[section] = None
        elif choice <= 6:
            patch[section] = draw(st.dictionaries(keys, patch_values, max_size=4))
    return patch


def leaf_paths(value, path=()):
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaf_paths(child, (*path, key))
    elif path:
        yield path, value


def assert_metadata_mirrors(state, metadata):
    if isinstance(state, dict):
        assert isinstance(metadata, dict) and metadata.keys() == state.keys()
        for key, child in state.items():
            assert_metadata_mirrors(child, metadata[key])
    else:
        assert set(metadata) == {"timestamp"}


def lookalike(value):
    """A value that Python's == may confuse with `value`, or that differs only slightly."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**63 else str(value)
    if isinstance(value, list):
        return [lookalike(value[0]), *value[1:]] if value else [0]
    if isinstance(value, dict):
        return {key: lookalike(child) for key, child in value.items()}
    return value + "x"


@st.composite
def perturbed(draw, value):
    if isinstance(value, dict) and value and draw(st.booleans()):
        return {key: draw(perturbed(child)) for key, child in value.items()}
    return lookalike(value) if draw(st.integers(0, 3)) == 0 else copy.deepcopy(value)


@st.composite
def overlapping_states(draw):
    """Half the time reported starts as desired with a few leaves swapped for look-alikes
    (1 against 1.0 or true, [0] against [false], ...), where Python's == would lie."""
    state = draw(states)
    if "desired" in state and draw(st.booleans()):
        state["reported"] = draw(perturbed(state["desired"]))
    return state


@settings(max_examples=500, deadline=None)
@given(stored=overlapping_states(), updates=st.lists(patches(), min_size=1, max_size=4))
def test_merge_then_delta_agrees_with_the_oracle(stored, updates):
    state, metadata = merge_state({}, {}, stored, T0)
    expected = oracle_merge({}, stored)
    for step, patch in enumerate(updates, start=1):
        state, metadata = merge_state(state, metadata, patch, T0 + step)
        expected = oracle_merge(expected, patch)

        assert exact(state) == exact(expected)
        assert_metadata_mirrors(state, metadata)
        delta, delta_metadata = compute_delta(state, metadata)
        desired, reported = expected.get("desired", {}), expected.get("reported", {})
        assert exact(delta) == exact(oracle_delta(desired, reported))
        assert_metadata_mirrors(delta, delta_metadata)


@settings(max_examples=200, deadline=None)
@given(stored=states, patch=patches())
def test_only_written_leaves_get_the_new_timestamp(stored, patch):
    state, metadata = merge_state({}, {}, stored, T0)
    state, metadata = merge_state(state, metadata, patch, T1)

    written = {
        path for section in (patch or {}) for path, _ in leaf_paths({section: patch[section]})
    }
    for path, value in leaf_paths(state):
        stamp = metadata
        for key in path:
            stamp = stamp[key]
        if isinstance(value, dict):  # an empty object has no leaves, so no stamp of its own
            assert stamp == {}
            continue
        touched = any(path[: len(w)] == w for w in written) or any(
            w[: len(path)] == path for w in written
        )
        if not touched:
            assert stamp == {"timestamp": T0}
        elif path in written:
            assert stamp == {"timestamp": T1}


@settings(max_examples=200, deadline=None)
@given(desired=sections, extra=sections)
def test_reported_equal_to_desired_yields_no_delta(desired, extra):
    reported = {**extra, **copy.deepcopy(desired)}

    assert compute_delta({"desired": desired, "reported": reported}) == ({}, {})
    shadow = shadow_with({"desired": desired})
    outcome = apply_update(shadow, UpdateRequest(state={"reported": reported}), T1)
    assert outcome.delta is None


@settings(max_examples=200, deadline=None)
@given(stored=states)
def test_merging_a_document_into_itself_is_a_no_op(stored):
    state, metadata = merge_state({}, {}, stored, T0)

    again, again_metadata = merge_state(state, metadata, state, T1)

    assert exact(again) == exact(state)
    assert_metadata_mirrors(again, again_metadata)


@settings(max_examples=100, deadline=None)
@given(content=sections, extra_bytes=st.integers(min_value=0, max_value=3))
def test_the_size_limit_holds_exactly_at_8192_bytes(content, extra_bytes):
    base = {"reported": {**content, "pad": ""}}
    filler = MAX_STATE_BYTES + extra_bytes - state_size(base)
    state = {"reported": {**content, "pad": "x" * filler}}
    assert state_size(state) == MAX_STATE_BYTES + extra_bytes

    request = UpdateRequest(state=state)
    if extra_bytes == 0:
        assert apply_update(None, request, T1).shadow.state == state
    else:
        with pytest.raises(PayloadTooLarge):
            apply_update(None, request, T1)


def wrap(path, leaf):
    value = leaf
    for step in reversed(path):
        value = {step[1]: value} if step[0] == "key" else [value]
    return value


path_steps = st.tuples(st.sampled_from(["key", "index"]), keys)


@settings(max_examples=200, deadline=None)
@given(path=st.lists(path_steps, min_size=6, max_size=6), leaf=scalars, first=keys)
def test_the_depth_limit_holds_exactly_at_six_levels(path, leaf, first):
    path[0] = ("key", first)  # a section is an object: its first level is a key
    section = wrap(path, leaf)
    assert depth_of(section) == 6
    assert validate_update({"state": {"desired": section}})

    deeper = wrap([*path, ("index", "")], leaf)
    assert depth_of(deeper) == 7
    with pytest.raises(InvalidRequest) as caught:
        validate_update({"state": {"reported": {}, "desired": deeper}})
    assert caught.value.message == "JSON contains too many levels of nesting; maximum is 6"


@given(old=sections, new=sections)
def test_merge_patch_between_takes_old_to_new(old, new):
    patch = merge_patch_between(old, new)
    assert oracle_merge_patch(old, patch) == new
