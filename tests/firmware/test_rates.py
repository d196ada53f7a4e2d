"""The rollout rate schedule (firmware/rates.py, pure), with hypothesis for the pacing bound."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from firmware import rates

T0 = datetime(2030, 1, 7, tzinfo=UTC)  # a Monday


def exponential(base, factor, notified=None, succeeded=None, maximum=None):
    criteria = (
        {"number_of_notified_things": notified}
        if notified
        else {"number_of_succeeded_things": succeeded}
    )
    config = {
        "exponential_rate": {
            "base_rate_per_minute": base,
            "increment_factor": factor,
            "rate_increase_criteria": criteria,
        }
    }
    if maximum:
        config["maximum_per_minute"] = maximum
    return config


def test_no_rollout_config_is_unthrottled_and_a_constant_rate_stays():
    assert rates.rate_per_minute({}, notified=0, succeeded=0) is None
    assert rates.rate_per_minute({"maximum_per_minute": 7}, notified=500, succeeded=0) == 7


def test_the_aws_example_doubles_every_thousand_notified():
    config = exponential(50, 2, notified=1000)
    counts = (0, 999, 1000, 2000, 3000)
    found = [rates.rate_per_minute(config, notified=n, succeeded=0) for n in counts]
    assert found == [50, 50, 100, 200, 400]


def test_succeeded_criteria_count_successes_and_the_cap_holds():
    config = exponential(10, 3.5, succeeded=5, maximum=100)
    assert rates.rate_per_minute(config, notified=1000, succeeded=4) == 10
    assert rates.rate_per_minute(config, notified=0, succeeded=5) == 35
    assert rates.rate_per_minute(config, notified=0, succeeded=10_000) == 100
    assert (
        rates.rate_per_minute(exponential(900, 5.0, notified=1), notified=99, succeeded=0) == 1000
    )


def run(rate, gaps):
    """Ticks after each gap (seconds); yields (seconds since the start, released so far)."""
    pace, now, total, first = None, T0, 0, None
    for gap in gaps:
        now += timedelta(seconds=gap)
        first = first or now
        allowed, pace = rates.allowance(pace, rate, now)
        pace = rates.Pace(pace.started_at, pace.rate, pace.released + allowed)
        total += allowed
        yield (now - first).total_seconds(), total


@given(rate=st.integers(1, 1000), gaps=st.lists(st.floats(0.5, 20), min_size=1, max_size=80))
def test_the_release_is_never_ahead_of_the_rate(rate, gaps):
    for elapsed, total in run(rate, gaps):
        assert total <= rate * elapsed / 60 + 1


@given(rate=st.integers(1, 1000), tick=st.integers(1, 10))
def test_regular_ticks_stay_within_one_tick_of_the_rate(rate, tick):
    for elapsed, total in run(rate, [tick] * (300 // tick)):  # five minutes
        assert total >= rate * (elapsed - tick) / 60


def test_a_pause_starts_a_new_pace_instead_of_a_burst():
    allowed, pace = rates.allowance(None, 60, T0)
    pace = rates.Pace(pace.started_at, 60, allowed)
    allowed, pace = rates.allowance(pace, 60, T0 + timedelta(minutes=10))
    assert (allowed, pace.started_at) == (1, T0 + timedelta(minutes=10))


def test_maintenance_windows_open_at_their_cron_time_for_their_duration():
    windows = [{"start_time": "cron(30 1 ? * MON *)", "duration_in_minutes": 90}]  # 01:30-03:00
    assert not rates.in_window(windows, T0.replace(hour=1, minute=29))
    assert rates.in_window(windows, T0.replace(hour=1, minute=30))
    assert rates.in_window(windows, T0.replace(hour=2, minute=59, second=59))
    assert not rates.in_window(windows, T0.replace(hour=3))
    assert not rates.in_window(windows, (T0 + timedelta(days=1)).replace(hour=2))


def test_a_window_started_yesterday_still_counts_today():
    windows = [{"start_time": "cron(0 23 * * ? *)", "duration_in_minutes": 120}]
    assert rates.in_window(windows, T0.replace(hour=0, minute=30))
