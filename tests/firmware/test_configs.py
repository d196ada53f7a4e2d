"""A job's configs against AWS IoT Jobs' documented ranges (firmware/configs.py, pure)."""

from datetime import UTC, datetime, timedelta

import pytest

from firmware.configs import validate

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def errors(**configs):
    return validate(configs, now=NOW)


@pytest.mark.parametrize("rate", [1, 1000])
def test_maximum_per_minute_from_1_to_1000(rate):
    assert errors(rollout={"maximum_per_minute": rate}) == {}


@pytest.mark.parametrize("rate", [0, 1001, 1.5, True, "10"])
def test_maximum_per_minute_outside_is_refused(rate):
    assert errors(rollout={"maximum_per_minute": rate}) == {
        "rollout": ["maximum_per_minute: Must be an integer from 1 to 1000."]
    }


def exponential(**changes):
    rate = {
        "base_rate_per_minute": 50,
        "increment_factor": 2,
        "rate_increase_criteria": {"number_of_notified_things": 1000},
        **changes,
    }
    return {"exponential_rate": rate}


@pytest.mark.parametrize("factor", [1.1, 2, 5.0, 4.9])
def test_increment_factor_from_1_1_to_5_with_one_decimal(factor):
    assert errors(rollout=exponential(increment_factor=factor)) == {}


@pytest.mark.parametrize("factor", [1.0, 5.1, 1.25, "2"])
def test_increment_factor_outside_is_refused(factor):
    assert (
        "exponential_rate.increment_factor"
        in errors(rollout=exponential(increment_factor=factor))["rollout"][0]
    )


def test_rate_increase_criteria_needs_exactly_one_count():
    both = {"number_of_notified_things": 1, "number_of_succeeded_things": 1}
    assert errors(rollout=exponential(rate_increase_criteria=both))
    assert errors(rollout=exponential(rate_increase_criteria={"number_of_succeeded_things": 0}))


def abort(**changes):
    item = {
        "failure_type": "FAILED",
        "action": "CANCEL",
        "threshold_percentage": 10.25,
        "min_number_of_executed_things": 1,
        **changes,
    }
    return {"criteria_list": [item]}


def test_abort_criteria_in_range_pass():
    assert errors(abort=abort()) == {}
    assert errors(abort=abort(failure_type="ALL", threshold_percentage=100)) == {}


@pytest.mark.parametrize(
    "changes",
    [
        {"threshold_percentage": 100.01},
        {"threshold_percentage": 0},
        {"threshold_percentage": 10.125},
        {"failure_type": "REMOVED"},
        {"action": "STOP"},
        {"min_number_of_executed_things": 0},
    ],
)
def test_abort_criteria_outside_are_refused(changes):
    assert "abort" in errors(abort=abort(**changes))


def test_timeout_from_1_minute_to_7_days():
    assert errors(timeout={"in_progress_timeout_in_minutes": 10080}) == {}
    assert errors(timeout={"in_progress_timeout_in_minutes": 0})
    assert errors(timeout={"in_progress_timeout_in_minutes": 10081})


def test_retries_at_most_10_per_device_and_timed_out_needs_a_timeout():
    retry = {"criteria_list": [{"failure_type": "FAILED", "number_of_retries": 10}]}
    assert errors(retry=retry) == {}
    both = {
        "criteria_list": [
            {"failure_type": "FAILED", "number_of_retries": 6},
            {"failure_type": "TIMED_OUT", "number_of_retries": 5},
        ]
    }
    assert errors(retry=both, timeout={"in_progress_timeout_in_minutes": 5}) == {
        "retry": ["criteria_list: At most 10 retries per device in all."]
    }
    timed_out = {"criteria_list": [{"failure_type": "TIMED_OUT", "number_of_retries": 1}]}
    assert errors(retry=timed_out) == {
        "retry": ["criteria_list[0].failure_type: Retrying TIMED_OUT needs a timeout config."]
    }
    assert errors(retry={"criteria_list": [{"failure_type": "REJECTED", "number_of_retries": 1}]})


def at(minutes):
    return (NOW + timedelta(minutes=minutes)).isoformat()


def test_a_schedule_starts_30_minutes_to_a_year_ahead_and_ends_30_minutes_after():
    assert errors(scheduling={"start_time": at(30), "end_time": at(60)}) == {}
    assert errors(scheduling={"start_time": at(-5)})["scheduling"] == [
        "start_time: Must be 30 minutes to one year from now."
    ]
    assert errors(scheduling={"start_time": at(29)})
    assert errors(scheduling={"start_time": at(60 * 24 * 367)})
    assert errors(scheduling={"start_time": at(30), "end_time": at(59)})
    assert errors(scheduling={"start_time": "2030-01-01T12:00:00"})  # no time zone


def test_end_behavior_and_maintenance_windows():
    window = {"start_time": "cron(0 2 ? * MON-FRI *)", "duration_in_minutes": 1430}
    good = {
        "start_time": at(30),
        "end_time": at(90),
        "end_behavior": "FORCE_CANCEL",
        "maintenance_windows": [window],
    }
    assert errors(scheduling=good) == {}
    assert errors(scheduling={**good, "end_behavior": "STOP"})
    bad_cron = {**window, "start_time": "cron(61 * * * ? *)"}
    assert errors(scheduling={**good, "maintenance_windows": [bad_cron]})
    too_long = {**window, "duration_in_minutes": 1431}
    assert errors(scheduling={**good, "maintenance_windows": [too_long]})


def test_every_scheduling_field_is_optional_as_in_aws():
    window = {"start_time": "cron(0 2 ? * MON-FRI *)", "duration_in_minutes": 60}
    assert errors(scheduling={"maintenance_windows": [window]}) == {}
    assert errors(scheduling={"end_time": at(30), "end_behavior": "CANCEL"}) == {}
    assert errors(scheduling={"end_time": at(29)}) == {
        "scheduling": ["end_time: Must be 30 minutes after now to two years from now."]
    }


def test_a_maintenance_window_takes_aws_cron_and_names_what_is_wrong():
    def window(start_time, minutes=60):
        window = {"start_time": start_time, "duration_in_minutes": minutes}
        return errors(scheduling={"maintenance_windows": [window]}).get("scheduling")

    assert window("cron(0 2 ? * MON-FRI *)") is None
    assert window("cron(0 2 L * ? 2031)", 1) is None
    (unix,) = window("0 2 * * 1")  # Unix cron: 1 is Monday there, Sunday in AWS's
    assert unix.startswith("maintenance_windows[0].start_time: Must be an AWS cron expression")
    assert window("cron(0 2 * * ? *)", 1430) is None
    assert window("cron(0 2 * * ? *)", 1431) == [
        "maintenance_windows[0].duration_in_minutes: Must be an integer from 1 to 1430."
    ]
    assert window("cron(0 2 * * * *)")[0].startswith(
        "maintenance_windows[0].start_time: Exactly one of day-of-month and day-of-week"
    )
    assert window(None) == [
        "maintenance_windows[0].start_time: Must be a string like cron(0 2 ? * MON-FRI *)."
    ]


def test_a_templates_scheduling_holds_maintenance_windows_only():
    window = {"start_time": "cron(0 2 ? * * *)", "duration_in_minutes": 60}
    assert validate({"scheduling": {"maintenance_windows": [window]}}, now=NOW, template=True) == {}
    refused = validate(
        {
            "scheduling": {
                "start_time": at(60),
                "maintenance_windows": [{**window, "start_time": "x"}],
            }
        },
        now=NOW,
        template=True,
    )
    assert refused["scheduling"][0] == (
        "start_time: A template holds only maintenance_windows; give it when creating the job."
    )
    assert refused["scheduling"][1].startswith("maintenance_windows[0].start_time: Must be")


def test_unknown_keys_are_named():
    assert errors(rollout={"maximumPerMinute": 5}) == {
        "rollout": ["maximumPerMinute: Unknown field."]
    }
