"""When and how fast a job's rollout releases executions — plain Python, no Django.

- `rate_per_minute`: the rate a rollout config asks for now (maximumPerMinute, or exponentialRate
  stepping up by incrementFactor each time rateIncreaseCriteria's count is reached again, capped
  at maximumPerMinute or AWS's 1,000), None when unthrottled (no rollout config).
- `allowance`: how many may be released at a tick. The rate is spread over the minute: the credit
  grows by rate/60 each second since the pace began (one release at its start), so by any time
  t the pace has released at most rate * t / 60 + 1 — never ahead of the rate — and, with a tick
  every few seconds, at most one tick's credit behind it. A tick after a pause (the engine was
  down) does not burst to catch up: more than a minute's unused credit starts a new pace.
- `in_window`: whether a time lies inside one of the scheduling config's maintenance windows
  (an AWS cron expression for the start, in UTC, firmware/aws_cron.py, + a duration).
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from firmware import aws_cron
from firmware.configs import MAX_RATE


def rate_per_minute(rollout: dict[str, Any], *, notified: int, succeeded: int) -> int | None:
    maximum = rollout.get("maximum_per_minute")
    exponential = rollout.get("exponential_rate")
    if not exponential:
        return maximum
    cap = maximum or MAX_RATE
    criteria = exponential["rate_increase_criteria"]
    if "number_of_notified_things" in criteria:
        steps = notified // criteria["number_of_notified_things"]
    else:
        steps = succeeded // criteria["number_of_succeeded_things"]
    rate = Decimal(exponential["base_rate_per_minute"])
    factor = Decimal(str(exponential["increment_factor"]))
    for _ in range(steps):
        if rate >= cap:
            break
        rate *= factor
    return min(cap, int(rate))


@dataclass(frozen=True)
class Pace:
    """A paced stretch of a rollout: when it began, its rate and how many it released since."""

    started_at: datetime
    rate: int
    released: int = 0


def allowance(pace: Pace | None, rate: int, now: datetime) -> tuple[int, Pace]:
    """(how many may be released now, the pace to record with them added). A new rate, or a
    pause that left more than a minute's credit unused, starts a new pace at `now`."""
    if pace is not None and pace.rate == rate:
        due = _due(pace, now)
        if due - pace.released > rate:
            pace = None
    if pace is None or pace.rate != rate:
        pace = Pace(now, rate)
    return max(0, _due(pace, now) - pace.released), pace


def _due(pace: Pace, now: datetime) -> int:
    """Releases due since the pace began: one at once, then rate per 60 s."""
    elapsed = max(0.0, (now - pace.started_at).total_seconds())
    return math.floor(pace.rate * elapsed / 60) + 1


def in_window(windows: Iterable[dict[str, Any]], now: datetime) -> bool:
    """Is `now` inside a window: did a window's AWS cron expression fire at one of the last
    duration_in_minutes minutes (its start minute counts, its end minute does not)?"""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    for window in windows:
        try:
            starts = aws_cron.parse(window["start_time"])
        except aws_cron.CronError:
            continue  # checked when the job was created (firmware.configs); never open
        for back in range(window["duration_in_minutes"]):
            if starts.matches(minute - timedelta(minutes=back)):
                return True
    return False
