"""AWS's cron expressions for maintenance windows (firmware/aws_cron.py): the dialect AWS
documents (EventBridge's table, with ?, L, W and #), refusals that name the field, and hostile
input that never gets past a CronError."""

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.aws_cron import CronError, parse


def fires(expression: str, year: int, month: int, hour: int = 0, minute: int = 0) -> list[int]:
    """The days of the month at whose hour:minute the expression fires."""
    cron = parse(expression)
    length = calendar.monthrange(year, month)[1]
    return [
        day
        for day in range(1, length + 1)
        if cron.matches(datetime(year, month, day, hour, minute, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    "expression",
    [
        # AWS's own examples (EventBridge's cron reference).
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        # Each special character, names in any case, a year list.
        "cron(0 2 L * ? *)",
        "cron(0 2 15W * ? *)",
        "cron(0 2 ? * 6L *)",
        "cron(0 2 ? * L *)",
        "cron(30 23 ? jan,jul sun 2030,2031)",
        "cron(*/20 0-6/2 1-15/7 JAN-JUN ? 2030-2040/5)",
    ],
)
def test_accepts_aws_cron_expressions(expression):
    parse(expression)


def test_weekdays_count_from_sunday_as_aws_does():
    # January 2030: the 6th is a Sunday, the 7th a Monday.
    assert fires("cron(0 2 ? * 1 *)", 2030, 1, 2) == [6, 13, 20, 27]
    assert fires("cron(0 2 ? * MON-FRI *)", 2030, 1, 2)[:5] == [1, 2, 3, 4, 7]
    assert fires("cron(0 2 ? * L *)", 2030, 1, 2) == [5, 12, 19, 26]  # L: the week's last day


def test_last_day_nearest_weekday_last_and_nth_weekday():
    assert fires("cron(0 0 L * ? *)", 2028, 2) == [29]  # a leap year
    assert fires("cron(0 0 L * ? *)", 2030, 4) == [30]
    # June 2030: the 1st is a Saturday, the 15th a Saturday, the 30th a Sunday.
    assert fires("cron(0 0 1W * ? *)", 2030, 6) == [3]  # not back into May
    assert fires("cron(0 0 15W * ? *)", 2030, 6) == [14]
    assert fires("cron(0 0 30W * ? *)", 2030, 6) == [28]  # not on into July
    assert fires("cron(0 0 31W * ? *)", 2030, 6) == []  # June has no 31st
    assert fires("cron(0 0 ? * 6L *)", 2030, 1) == [25]  # the last Friday
    assert fires("cron(0 0 ? * FRIL *)", 2030, 1) == [25]
    assert fires("cron(0 9 ? * 2#1 *)", 2030, 1, 9) == [7]  # the first Monday
    assert fires("cron(0 9 ? * MON#5 *)", 2030, 1, 9) == []  # January 2030 has four


def test_minutes_hours_months_and_years_restrict_the_minute():
    cron = parse("cron(5/20 22-23 * DEC ? 2030)")
    assert cron.matches(datetime(2030, 12, 3, 22, 45, tzinfo=UTC))
    assert not cron.matches(datetime(2030, 12, 3, 22, 46, tzinfo=UTC))
    assert not cron.matches(datetime(2030, 12, 3, 21, 45, tzinfo=UTC))
    assert not cron.matches(datetime(2030, 11, 3, 22, 45, tzinfo=UTC))
    assert not cron.matches(datetime(2031, 12, 3, 22, 45, tzinfo=UTC))


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("0 2 * * 1", "Must be an AWS cron expression"),  # Unix cron: 1 would be Monday
        ("cron(0 2 * * 1)", "Needs 6 fields"),
        ("cron(0 0 2 * * ? *)", "Needs 6 fields"),  # Quartz's seconds field
        ("cron(0 2 * * * *)", "Exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 2 1 * MON *)", "Exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 2 ? * ? *)", "Exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(60 2 * * ? *)", "minutes: '60' is not in 0-59"),
        ("cron(0 24 * * ? *)", "hours: '24' is not in 0-23"),
        ("cron(0 2 0 * ? *)", "day-of-month: '0' is not in 1-31"),
        ("cron(0 2 * 13 ? *)", "month: '13' is not in 1-12 or JAN-DEC"),
        ("cron(0 2 ? * 0 *)", "day-of-week: '0' is not in 1-7 or SUN-SAT"),
        ("cron(0 2 * * ? 1969)", "year: '1969' is not in 1970-2199"),
        ("cron(0 2 * FOO ? *)", "month: 'FOO' is not in 1-12 or JAN-DEC"),
        ("cron(0 22-2 * * ? *)", "hours: the range '22-2' runs backwards"),
        ("cron(0/0 2 * * ? *)", "minutes: the step in '0/0' must be 1 to 59"),
        ("cron(0 2 ? * 1/2 *)", "day-of-week: '1/2': AWS allows no / in day-of-week"),
        ("cron(0 2 ? * 2#6 *)", "day-of-week: in '2#6' the week after # must be 1 to 5"),
        ("cron(0 2 ? * 2#1,3#2 *)", "the week after # must be 1 to 5"),
        ("cron(0 2 ? * 8L *)", "day-of-week: '8L' needs one value of 1-7 or SUN-SAT before L"),
        ("cron(0 2 1-5W * ? *)", "day-of-month: '1-5W' needs one value of 1-31 before W"),
        ("cron(0 2 1,L * ? *)", "day-of-month: 'L' is not in 1-31"),
        ("cron(0 2 ,, * ? *)", "day-of-month: '' is not a value, range or step"),
        ("cron(*-5 2 * * ? *)", "minutes: '*-5': * takes no range"),
        ("cron(0\t2 * * ? *)", "Has '\\t'"),
        ("cron(0 2 * * ? \x00)", "Has '\\x00'"),
        ("cron(٣ 2 * * ? *)", "Has '٣'"),  # a digit, but not an ASCII one
        ("cron(99999999999999999999 2 * * ? *)", "minutes: '99999999999999999999' is not"),
        ("cron()", "Needs 6 fields"),
        ("cron((0 2 * * ? *))", "Must be an AWS cron expression"),
        ("cron(0 2 * * ? *) ", "Must be an AWS cron expression"),
        ("CRON(0 2 * * ? *)", "Must be an AWS cron expression"),
        ("", "Must be 1 to 256 characters"),
        ("cron(" + "0," * 130 + "0 2 * * ? *)", "Must be 1 to 256 characters"),
    ],
)
def test_refuses_what_aws_refuses_naming_the_field(expression, said):
    with pytest.raises(CronError) as refused:
        parse(expression)
    assert said in str(refused.value)


@pytest.mark.parametrize("value", [None, 5, ["cron(0 2 * * ? *)"], {"cron": 1}, b"cron()"])
def test_refuses_what_is_no_string(value):
    with pytest.raises(CronError, match="Must be a string"):
        parse(value)


JUNK = st.text(alphabet="0123456789*?/,-#LWMONFRIJANDEC\t\x00٣", max_size=8)
# Each field's usual values, some out of range or misplaced: a few in a hundred of the
# expressions built from them are valid, the rest fail on one field or another.
EXPRESSIONS = st.tuples(
    st.sampled_from(["*", "0", "59", "0/15", "*/7", "5-10", "60", "10-5", "0/0", "1,2,,3"]),
    st.sampled_from(["*", "0", "23", "22-23,0-2", "0-6/2", "24"]),
    st.sampled_from(["?", "*", "1", "31", "L", "15W", "32", "LW", "1-5W", "1,L"]),
    st.sampled_from(["*", "JAN-MAR", "dec", "12", "13", "FOO"]),
    st.sampled_from(["?", "*", "MON-FRI", "1", "L", "6L", "2#1", "8", "2#6", "1/2"]),
    st.sampled_from(["*", "2030", "2030-2040/5", "1969", "2200"]),
).map(lambda fields: "cron(" + " ".join(fields) + ")")


@given(
    st.one_of(EXPRESSIONS, st.lists(JUNK, max_size=8).map(lambda f: f"cron({' '.join(f)})")),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31)),
)
def test_hostile_fields_are_refused_with_a_cron_error_and_nothing_else(expression, moment):
    try:
        cron = parse(expression)
    except CronError:
        return
    cron.matches(moment.replace(tzinfo=UTC))  # whatever it accepted, it can evaluate


@given(
    st.sets(st.integers(0, 59), min_size=1),
    st.sets(st.integers(0, 23), min_size=1),
    st.datetimes(min_value=datetime(2030, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_a_list_matches_exactly_its_values(minutes, hours, moment):
    listed = ",".join(map(str, sorted(minutes)))
    cron = parse(f"cron({listed} {','.join(map(str, sorted(hours)))} * * ? *)")
    moment = moment.replace(tzinfo=UTC)
    assert cron.matches(moment) == (moment.minute in minutes and moment.hour in hours)


def test_a_step_from_a_value_runs_to_the_end_of_the_field():
    cron = parse("cron(50/4 * * * ? *)")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    minutes = [m for m in range(60) if cron.matches(start + timedelta(minutes=m))]
    assert minutes == [50, 54, 58]
