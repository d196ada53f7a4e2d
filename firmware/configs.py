"""A job's configs checked against AWS IoT Jobs' documented ranges (device-protocol.md §2.6) —
plain Python, no Django.

Each `check_*` takes the config as the API received it (snake_case keys) and returns a list of
(path, message) problems, empty when it is valid; `validate(...)` checks them all and returns
{field: {sub.path: [messages]}} for the API. Valid configs are stored as sent, under these keys:

    rollout:    {maximum_per_minute} and/or {exponential_rate: {base_rate_per_minute,
                increment_factor, rate_increase_criteria: {number_of_notified_things |
                number_of_succeeded_things}}}
    abort:      {criteria_list: [{failure_type, action, threshold_percentage,
                min_number_of_executed_things}]}
    timeout:    {in_progress_timeout_in_minutes}
    retry:      {criteria_list: [{failure_type, number_of_retries}]}
    scheduling: {start_time?, end_time?, end_behavior?, maintenance_windows?: [{start_time (an
                AWS cron expression, firmware/aws_cron.py), duration_in_minutes}]}

A job template's scheduling holds maintenance_windows only (`check_template_scheduling`): AWS's
CreateJobTemplate takes maintenanceWindows but no start or end time, which would go stale in a
template (a start time must be 30 minutes to a year ahead of the job's creation).
"""

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from firmware import aws_cron

Problems = list[tuple[str, str]]

MAX_RATE = 1000  # maximumPerMinute and baseRatePerMinute: 1-1000
MAX_IN_PROGRESS_MINUTES = 10080  # 7 days
MAX_RETRIES = 10  # per device, across failure types
MAX_WINDOW_MINUTES = 1430
ABORT_FAILURE_TYPES = ("FAILED", "REJECTED", "TIMED_OUT", "ALL")
RETRY_FAILURE_TYPES = ("FAILED", "TIMED_OUT", "ALL")
END_BEHAVIORS = ("STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL")
MIN_LEAD = timedelta(minutes=30)  # startTime at least 30 min ahead; endTime 30 min after start


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(value: Any, low: int, high: int | None) -> bool:
    return _is_int(value) and value >= low and (high is None or value <= high)


def _decimals(value: Any) -> int | None:
    """Digits after the point of a JSON number, None when it is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        exponent = Decimal(str(value)).normalize().as_tuple().exponent
    except InvalidOperation:
        return None
    return max(0, -exponent) if isinstance(exponent, int) else None


def _object(value: Any, path: str, allowed: set[str], problems: Problems) -> dict | None:
    if not isinstance(value, dict):
        problems.append((path, "Must be an object."))
        return None
    for key in sorted(set(value) - allowed):
        problems.append((f"{path}.{key}" if path else key, "Unknown field."))
    return value


def _range(low: int, high: int | None) -> str:
    return f"Must be an integer from {low} to {high}." if high else f"Must be an integer ≥ {low}."


def check_rollout(config: Any) -> Problems:
    problems: Problems = []
    config = _object(config, "", {"maximum_per_minute", "exponential_rate"}, problems)
    if config is None:
        return problems
    if "maximum_per_minute" in config and not _int_in(config["maximum_per_minute"], 1, MAX_RATE):
        problems.append(("maximum_per_minute", _range(1, MAX_RATE)))
    if "exponential_rate" in config:
        problems += _check_exponential(config["exponential_rate"])
    return problems


def _check_exponential(rate: Any) -> Problems:
    problems: Problems = []
    keys = {"base_rate_per_minute", "increment_factor", "rate_increase_criteria"}
    rate = _object(rate, "exponential_rate", keys, problems)
    if rate is None:
        return problems
    for key in sorted(keys - set(rate)):
        problems.append((f"exponential_rate.{key}", "This field is required."))
    if "base_rate_per_minute" in rate and not _int_in(rate["base_rate_per_minute"], 1, MAX_RATE):
        problems.append(("exponential_rate.base_rate_per_minute", _range(1, MAX_RATE)))
    if "increment_factor" in rate:
        factor, places = rate["increment_factor"], _decimals(rate["increment_factor"])
        if places is None or places > 1 or not 1.1 <= factor <= 5.0:
            problems.append(
                ("exponential_rate.increment_factor", "Must be 1.1 to 5.0, one decimal at most.")
            )
    if "rate_increase_criteria" in rate:
        path = "exponential_rate.rate_increase_criteria"
        kinds = {"number_of_notified_things", "number_of_succeeded_things"}
        criteria = _object(rate["rate_increase_criteria"], path, kinds, problems)
        if criteria is not None:
            given = kinds & set(criteria)
            if len(given) != 1:
                problems.append((path, "Give exactly one of " + " or ".join(sorted(kinds)) + "."))
            for key in sorted(given):
                if not _int_in(criteria[key], 1, None):
                    problems.append((f"{path}.{key}", _range(1, None)))
    return problems


def _criteria_list(config: Any, item_keys: set[str], problems: Problems) -> list[dict]:
    config = _object(config, "", {"criteria_list"}, problems)
    if config is None:
        return []
    items = config.get("criteria_list")
    if not isinstance(items, list) or not items:
        problems.append(("criteria_list", "Must be a non-empty list."))
        return []
    checked = []
    for index, item in enumerate(items):
        path = f"criteria_list[{index}]"
        item = _object(item, path, item_keys, problems)
        if item is None:
            continue
        for key in sorted(item_keys - set(item)):
            problems.append((f"{path}.{key}", "This field is required."))
        checked.append(item)
    return checked


def _choice(item: dict, key: str, choices: tuple[str, ...], path: str, problems: Problems):
    if key in item and item[key] not in choices:
        problems.append((f"{path}.{key}", "Must be one of " + ", ".join(choices) + "."))


def _no_repeated_types(items: list[dict], problems: Problems) -> None:
    types = [item.get("failure_type") for item in items]
    if len(set(map(str, types))) != len(types):
        problems.append(("criteria_list", "Each failure_type may appear once."))


def check_abort(config: Any) -> Problems:
    problems: Problems = []
    keys = {"failure_type", "action", "threshold_percentage", "min_number_of_executed_things"}
    items = _criteria_list(config, keys, problems)
    for index, item in enumerate(items):
        path = f"criteria_list[{index}]"
        _choice(item, "failure_type", ABORT_FAILURE_TYPES, path, problems)
        _choice(item, "action", ("CANCEL",), path, problems)
        if "threshold_percentage" in item:
            value, places = item["threshold_percentage"], _decimals(item["threshold_percentage"])
            if places is None or places > 2 or not 0 < value <= 100:
                message = "Must be above 0 and at most 100, two decimals at most."
                problems.append((f"{path}.threshold_percentage", message))
        executed = item.get("min_number_of_executed_things", 1)
        if not _int_in(executed, 1, None):
            problems.append((f"{path}.min_number_of_executed_things", _range(1, None)))
    _no_repeated_types(items, problems)
    return problems


def check_timeout(config: Any) -> Problems:
    problems: Problems = []
    config = _object(config, "", {"in_progress_timeout_in_minutes"}, problems)
    if config is None:
        return problems
    minutes = config.get("in_progress_timeout_in_minutes")
    if not _int_in(minutes, 1, MAX_IN_PROGRESS_MINUTES):
        problems.append(("in_progress_timeout_in_minutes", _range(1, MAX_IN_PROGRESS_MINUTES)))
    return problems


def check_retry(config: Any, *, has_timeout: bool) -> Problems:
    problems: Problems = []
    items = _criteria_list(config, {"failure_type", "number_of_retries"}, problems)
    total = 0
    for index, item in enumerate(items):
        path = f"criteria_list[{index}]"
        _choice(item, "failure_type", RETRY_FAILURE_TYPES, path, problems)
        if "number_of_retries" in item:
            if _int_in(item["number_of_retries"], 0, MAX_RETRIES):
                total += item["number_of_retries"]
            else:
                problems.append((f"{path}.number_of_retries", _range(0, MAX_RETRIES)))
        if item.get("failure_type") == "TIMED_OUT" and not has_timeout:
            problems.append((f"{path}.failure_type", "Retrying TIMED_OUT needs a timeout config."))
    _no_repeated_types(items, problems)
    if total > MAX_RETRIES:
        problems.append(("criteria_list", f"At most {MAX_RETRIES} retries per device in all."))
    return problems


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with a time zone, None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def check_scheduling(config: Any, *, now: datetime) -> Problems:
    problems: Problems = []
    keys = {"start_time", "end_time", "end_behavior", "maintenance_windows"}
    config = _object(config, "", keys, problems)
    if config is None:
        return problems
    # AWS: every field is optional; a job without start_time starts at once.
    start = parse_time(config.get("start_time"))
    if "start_time" in config and start is None:
        problems.append(("start_time", "Must be an ISO 8601 time with a time zone."))
    elif start is not None and not now + MIN_LEAD <= start <= now + timedelta(days=366):
        problems.append(("start_time", "Must be 30 minutes to one year from now."))
    if "end_time" in config:
        end = parse_time(config["end_time"])
        if end is None:
            problems.append(("end_time", "Must be an ISO 8601 time with a time zone."))
        elif not (start or now) + MIN_LEAD <= end <= now + timedelta(days=731):
            after = "start_time" if "start_time" in config else "now"
            message = f"Must be 30 minutes after {after} to two years from now."
            problems.append(("end_time", message))
    if "end_behavior" in config:
        if config["end_behavior"] not in END_BEHAVIORS:
            problems.append(("end_behavior", "Must be one of " + ", ".join(END_BEHAVIORS) + "."))
        elif "end_time" not in config:
            problems.append(("end_behavior", "Needs an end_time."))
    if "maintenance_windows" in config:
        problems += _check_windows(config["maintenance_windows"])
    return problems


def check_template_scheduling(config: Any) -> Problems:
    """A job template's scheduling: maintenance_windows only (see the module's docstring)."""
    if not isinstance(config, dict):
        return [("", "Must be an object.")]
    problems: Problems = [
        (key, "A template holds only maintenance_windows; give it when creating the job.")
        for key in sorted(set(config) - {"maintenance_windows"})
    ]
    if "maintenance_windows" in config:
        problems += _check_windows(config["maintenance_windows"])
    return problems


def _check_windows(windows: Any) -> Problems:
    problems: Problems = []
    if not isinstance(windows, list) or not windows:
        return [("maintenance_windows", "Must be a non-empty list.")]
    for index, window in enumerate(windows):
        path = f"maintenance_windows[{index}]"
        window = _object(window, path, {"start_time", "duration_in_minutes"}, problems)
        if window is None:
            continue
        try:
            aws_cron.parse(window.get("start_time"))
        except aws_cron.CronError as error:
            problems.append((f"{path}.start_time", str(error)))
        if not _int_in(window.get("duration_in_minutes"), 1, MAX_WINDOW_MINUTES):
            problems.append((f"{path}.duration_in_minutes", _range(1, MAX_WINDOW_MINUTES)))
    return problems


def validate(
    configs: dict[str, Any], *, now: datetime, template: bool = False
) -> dict[str, list[str]]:
    """Every given config checked: {field: ["sub.path: message", ...]}, empty when all are
    valid. `configs` holds the API's fields (rollout, abort, timeout, retry, scheduling); absent
    or None ones are not checked. `template`: a job template's (scheduling: windows only)."""
    checks = {
        "rollout": check_rollout,
        "abort": check_abort,
        "timeout": check_timeout,
        "retry": lambda c: check_retry(c, has_timeout=bool(configs.get("timeout"))),
        "scheduling": (
            check_template_scheduling if template else lambda c: check_scheduling(c, now=now)
        ),
    }
    errors: dict[str, list[str]] = {}
    for field, check in checks.items():
        if configs.get(field) is None:
            continue
        for path, message in check(configs[field]):
            errors.setdefault(field, []).append(f"{path}: {message}" if path else message)
    return errors
