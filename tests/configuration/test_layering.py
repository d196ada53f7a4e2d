"""The precedence rules of layered configuration (pure: no database)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shadows.configuration.keys import ConfigError, check_fits, check_key, check_value
from shadows.configuration.layering import GroupLayer, Setting, effective, rendered

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def layer(name, priority=0, age_days=0, **values):
    return GroupLayer(
        uuid.uuid4(),
        name,
        priority,
        T0 - timedelta(days=age_days),
        {k: Setting(v, 1) for k, v in values.items()},
    )


def test_the_device_value_beats_every_group():
    groups = [layer("all", priority=9, interval=60)]
    result = effective({"interval": Setting(5, 3)}, groups)
    assert result["interval"].value == 5
    assert result["interval"].from_device
    assert result["interval"].source_name == "device"
    assert result["interval"].version == 3


def test_higher_priority_group_wins():
    low, high = layer("low", priority=1, interval=60), layer("high", priority=2, interval=30)
    for order in ([low, high], [high, low]):
        result = effective({}, order)
        assert result["interval"].value == 30
        assert result["interval"].source_name == "high"


def test_equal_priority_the_newest_group_wins():
    old, new = layer("old", age_days=10, interval=60), layer("new", age_days=1, interval=30)
    for order in ([old, new], [new, old]):
        assert effective({}, order)["interval"].source_name == "new"


def test_keys_from_different_layers_combine_with_their_sources():
    groups = [layer("site", mode="eco", interval=60), layer("type", priority=5, interval=10)]
    result = effective({"debug": Setting(True, 1)}, groups)
    assert {k: (e.value, e.source_name) for k, e in result.items()} == {
        "debug": (True, "device"),
        "interval": (10, "type"),
        "mode": ("eco", "site"),
    }
    assert rendered(result) == {"debug": True, "interval": 10, "mode": "eco"}


@pytest.mark.parametrize("key", ["a", "sample_rate", "mqtt-keepalive", "A9", "x" * 64])
def test_valid_keys(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "9lives", "_x", "a.b", "with space", "x" * 65, "ü", 5, None])
def test_invalid_keys_are_refused_with_the_rule(key):
    with pytest.raises(ConfigError) as caught:
        check_key(key)
    assert caught.value.field == "key"
    assert "starts with a letter" in caught.value.message


def test_null_value_is_refused():
    with pytest.raises(ConfigError, match="cannot be null"):
        check_value("a", None)


def test_array_with_null_is_refused_like_the_shadow():
    with pytest.raises(ConfigError, match="invalid node"):
        check_value("a", [1, None])


def test_too_deep_value_is_refused():
    # desired > a > b > c > d > e > f > g: seven keys below the section, one more than allowed.
    with pytest.raises(ConfigError, match="nesting"):
        check_value("a", {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}})
    check_value("a", {"b": {"c": {"d": {"e": {"f": 1}}}}})


def test_size_counts_desired_and_the_devices_report_of_it():
    # {"desired":{"k":"…"},"reported":{"k":"…"}}: 30 bytes of JSON around two copies of the value.
    overhead = len('{"desired":{"k":""},"reported":{"k":""}}')
    fits = (8192 - overhead) // 2
    check_fits({"k": "x" * fits})
    with pytest.raises(ConfigError, match="maximum size"):
        check_fits({"k": "x" * (fits + 1)})
