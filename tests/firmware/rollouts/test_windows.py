"""Maintenance windows read in each device's zone: which zones are open now, when a window next
opens, DST days, the device's zone, and refusals of bad windows."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.aws_cron import parse
from firmware.rollouts.windows import check_window, device_zone, next_opening, open_zones

NIGHTLY = "cron(30 2 * * ? *)"  # 02:30 local, every day
ZONES = ["Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata", "Europe/Berlin", "UTC"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- which zones are open ------------------------------------------------------------------------


def test_each_zone_opens_at_its_own_half_past_two():
    # 2026-07-15 21:00 UTC is 02:30 in Kolkata (+5:30); 09:30 UTC is 02:30 in Los Angeles (PDT).
    assert open_zones(NIGHTLY, 60, ZONES, utc(2026, 7, 15, 21, 0)) == {"Asia/Kolkata"}
    assert open_zones(NIGHTLY, 60, ZONES, utc(2026, 7, 15, 9, 45)) == {"America/Los_Angeles"}
    # Auckland in winter (NZST +12): 02:30 local is 14:30 UTC the day before.
    assert open_zones(NIGHTLY, 60, ZONES, utc(2026, 7, 14, 15, 29)) == {"Pacific/Auckland"}
    assert open_zones(NIGHTLY, 60, ZONES, utc(2026, 7, 15, 0, 30)) == {"Europe/Berlin"}  # CEST
    assert open_zones(NIGHTLY, 60, ZONES, utc(2026, 7, 15, 2, 30)) == {"UTC"}


def test_a_window_closes_after_its_duration():
    opened = utc(2026, 7, 15, 21, 0)  # Kolkata's 02:30
    assert open_zones(NIGHTLY, 60, ["Asia/Kolkata"], opened + timedelta(minutes=59))
    assert not open_zones(NIGHTLY, 60, ["Asia/Kolkata"], opened + timedelta(minutes=60))
    assert not open_zones(NIGHTLY, 60, ["Asia/Kolkata"], opened - timedelta(minutes=1))


def test_a_window_open_across_local_midnight():
    # 23:00 for 3 hours: still open at 01:30 the next local day.
    assert open_zones("cron(0 23 ? * MON *)", 180, ["UTC"], utc(2026, 7, 14, 1, 30)) == {"UTC"}
    assert not open_zones("cron(0 23 ? * MON *)", 180, ["UTC"], utc(2026, 7, 15, 1, 30))


def test_no_cron_means_always_open():
    assert open_zones("", 0, ZONES, utc(2026, 1, 1)) == set(ZONES)


# --- DST days ------------------------------------------------------------------------------------


def test_a_start_skipped_by_spring_forward_opens_after_the_jump():
    # 2026-03-29 Berlin: 02:00 CET → 03:00 CEST; 02:30 does not exist. The window opens at
    # 03:30 CEST (01:30 UTC) for its full 60 minutes, not skipped for the night.
    berlin = ["Europe/Berlin"]
    assert not open_zones(NIGHTLY, 60, berlin, utc(2026, 3, 29, 1, 29))
    assert open_zones(NIGHTLY, 60, berlin, utc(2026, 3, 29, 1, 30))
    assert open_zones(NIGHTLY, 60, berlin, utc(2026, 3, 29, 2, 29))
    assert not open_zones(NIGHTLY, 60, berlin, utc(2026, 3, 29, 2, 30))
    assert next_opening(NIGHTLY, 60, "Europe/Berlin", utc(2026, 3, 28, 12)) == utc(
        2026, 3, 29, 1, 30
    )


def test_a_start_repeated_by_fall_back_opens_once_for_real_minutes():
    # 2026-10-25 Berlin: 03:00 CEST → 02:00 CET; 02:30 happens twice. Open at the first (00:30
    # UTC) for 60 real minutes; the second 02:30 (01:30 UTC) does not open it again.
    berlin = ["Europe/Berlin"]
    assert open_zones(NIGHTLY, 60, berlin, utc(2026, 10, 25, 0, 30))
    assert open_zones(NIGHTLY, 60, berlin, utc(2026, 10, 25, 1, 29))
    assert not open_zones(NIGHTLY, 60, berlin, utc(2026, 10, 25, 1, 30))
    assert next_opening(NIGHTLY, 60, "Europe/Berlin", utc(2026, 10, 24, 12)) == utc(
        2026, 10, 25, 0, 30
    )


def test_auckland_moves_its_window_with_its_daylight_saving():
    # NZDT (+13) until 2026-04-05, NZST (+12) after: 02:30 local is 13:30 then 14:30 UTC.
    assert next_opening(NIGHTLY, 30, "Pacific/Auckland", utc(2026, 3, 1, 0)) == utc(
        2026, 3, 1, 13, 30
    )
    assert next_opening(NIGHTLY, 30, "Pacific/Auckland", utc(2026, 5, 1, 0)) == utc(
        2026, 5, 1, 14, 30
    )


# --- next opening --------------------------------------------------------------------------------


def test_next_opening_is_now_when_a_window_is_open():
    now = utc(2026, 7, 15, 21, 10, 5)
    assert next_opening(NIGHTLY, 60, "Asia/Kolkata", now) == now


def test_next_opening_follows_weekdays_in_the_local_zone():
    # Monday 02:00 in Los Angeles, asked on Tuesday: next Monday 2026-07-20, 09:00 UTC (PDT).
    assert next_opening("cron(0 2 ? * MON *)", 60, "America/Los_Angeles", utc(2026, 7, 14)) == utc(
        2026, 7, 20, 9, 0
    )


def test_a_window_that_never_opens_has_no_next_opening():
    assert next_opening("cron(0 2 30 2 ? *)", 60, "UTC", utc(2026, 1, 1)) is None
    assert next_opening("cron(0 2 * * ? 2025)", 60, "UTC", utc(2026, 1, 1)) is None


FIXED_ZONES = st.sampled_from(["UTC", "Asia/Kolkata", "Asia/Tokyo", "America/Phoenix"])
INSTANTS = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)).map(
    lambda moment: moment.replace(second=0, microsecond=0, tzinfo=UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    zone=FIXED_ZONES,
    now=INSTANTS,
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    duration=st.integers(1, 1430),
)
def test_open_zones_agrees_with_counting_minutes_back(zone, now, hour, minute, duration):
    # Zones without DST: open exactly when the cron matched one of the last `duration` minutes.
    cron = f"cron({minute} {hour} * * ? *)"
    brute = any(
        parse(cron).matches((now - timedelta(minutes=back)).astimezone(ZoneInfo(zone)))
        for back in range(duration)
    )
    assert (zone in open_zones(cron, duration, [zone], now)) == brute


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    after=INSTANTS,
    hour=st.integers(0, 23),
    weekday=st.sampled_from(["MON", "WED", "SUN", "*"]),
    duration=st.integers(1, 1430),
)
def test_the_next_opening_is_open_and_not_before_asked(zone, after, hour, weekday, duration):
    day_of_week = "?" if weekday == "*" else weekday
    cron = f"cron(15 {hour} {'*' if weekday == '*' else '?'} * {day_of_week} *)"
    opening = next_opening(cron, duration, zone, after)
    assert opening is not None and after <= opening < after + timedelta(days=8, hours=2)
    assert open_zones(cron, duration, [zone], opening) == {zone}


# --- the device's zone ---------------------------------------------------------------------------


def test_the_device_zone_comes_from_metadata_then_location_then_the_fallback():
    assert device_zone({"timezone": "Asia/Kolkata"}, {"timezone": "UTC"}, "Europe/Berlin") == (
        "Asia/Kolkata"
    )
    assert device_zone({}, {"timezone": "Pacific/Auckland"}, "UTC") == "Pacific/Auckland"
    assert device_zone(None, None, "Europe/Berlin") == "Europe/Berlin"


@pytest.mark.parametrize(
    "value", ["Mars/Olympus", "../../etc/passwd", "UTC\x00", 42, None, ["UTC"], "x" * 10_000, "Ünï"]
)
def test_an_unknown_device_zone_falls_back_to_the_rollouts(value):
    assert device_zone({"timezone": value}, {"timezone": value}, "Europe/Berlin") == "Europe/Berlin"


# --- refusals ------------------------------------------------------------------------------------


def test_a_valid_window_has_no_errors():
    assert check_window(NIGHTLY, 60, "Europe/Berlin") == {}
    assert check_window(NIGHTLY, 1430, "device_local") == {}
    assert check_window("", None, "UTC") == {}


@pytest.mark.parametrize(
    ("cron", "duration", "zone", "field"),
    [
        ("cron(0 2 * * * *)", 60, "UTC", "window_cron"),  # both day fields
        ("0 2 * * *", 60, "UTC", "window_cron"),  # Unix cron
        ("cron(0 2 * * ? *)\x00", 60, "UTC", "window_cron"),
        ("cron(" + "1," * 5000 + "2 * * ? *)", 60, "UTC", "window_cron"),
        ("cron(0 2 * * ? *)", 0, "UTC", "window_duration_minutes"),
        ("cron(0 2 * * ? *)", 1431, "UTC", "window_duration_minutes"),
        ("cron(0 2 * * ? *)", None, "UTC", "window_duration_minutes"),
        ("cron(0 2 * * ? *)", True, "UTC", "window_duration_minutes"),
        ("", 60, "UTC", "window_cron"),
        ("cron(0 2 * * ? *)", 60, "Mars/Olympus", "window_timezone"),
        ("cron(0 2 * * ? *)", 60, "UTC\x00", "window_timezone"),
        ("cron(0 2 * * ? *)", 60, "Europe/Bérlin", "window_timezone"),
        ("cron(0 2 * * ? *)", 60, "/etc/localtime", "window_timezone"),
    ],
)
def test_a_bad_window_is_refused_on_its_field(cron, duration, zone, field):
    errors = check_window(cron, duration, zone)
    assert set(errors) == {field}
    assert errors[field]


@settings(max_examples=200, deadline=None)
@given(cron=st.text(max_size=300), duration=st.integers(-(2**63), 2**63), zone=st.text(max_size=80))
def test_hostile_windows_are_refused_never_raised(cron, duration, zone):
    assert isinstance(check_window(cron, duration, zone), dict)
