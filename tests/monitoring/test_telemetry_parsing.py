"""The telemetry parser never raises, whatever a device sends, and keeps only finite numbers
under well-formed names (pure: no database)."""

import math
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from monitoring.telemetry.parsing import NAME, Limits, Reason, parse, timestamp

LIMITS = Limits(32, 64, timedelta(days=7), timedelta(minutes=5))
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def check(parsed) -> None:
    for name, value in parsed.values:
        assert NAME.fullmatch(name) and len(name) <= 64
        assert isinstance(value, float) and math.isfinite(value)
    assert NOW - timedelta(days=7) <= parsed.ts <= NOW + timedelta(minutes=5)


@given(st.binary(max_size=300))
def test_any_bytes_are_parsed_or_dropped_without_raising(payload):
    check(parse(payload, NOW, LIMITS))


@given(st.dictionaries(st.text(max_size=70), json_values, max_size=40))
def test_any_object_keeps_only_finite_numbers_under_good_names(document):
    try:
        payload = orjson.dumps(document)
    except orjson.JSONEncodeError:  # NaN or ints beyond 64 bits: a device could not send them
        return
    parsed = parse(payload, NOW, LIMITS)
    check(parsed)
    assert len(parsed.values) + parsed.dropped.total() >= min(1, len(document))


def test_epoch_milliseconds_and_seconds_read_the_same_instant():
    assert (
        timestamp(1796644800) == timestamp(1796644800000) == datetime(2026, 12, 7, 12, tzinfo=UTC)
    )
    assert timestamp("2026-12-07T13:00:00+01:00") == datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_a_message_with_nothing_but_ts_stores_nothing_and_drops_nothing():
    parsed = parse(b'{"ts": 1796644800}', NOW, LIMITS)
    assert (parsed.values, parsed.dropped.total()) == ([], 0)
    assert parse(b"[]", NOW, LIMITS).dropped == {Reason.NOT_OBJECT: 1}
