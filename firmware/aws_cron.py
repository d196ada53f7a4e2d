"""AWS's cron expressions, as a job's maintenance windows take them (schedulingConfig
maintenanceWindows[].startTime; the EventBridge dialect AWS documents) — plain Python, no Django.

    cron(minutes hours day-of-month month day-of-week year)      e.g. cron(0 2 ? * MON-FRI *)

    minutes       0-59                  , - * /
    hours         0-23                  , - * /
    day-of-month  1-31                  , - * ? / L W     (L: the last day; 15W: the weekday
                                                           nearest the 15th, in the same month)
    month         1-12 or JAN-DEC       , - * /
    day-of-week   1-7 or SUN-SAT        , - * ? L #       (1 = Sunday; L: Saturday; 6L: the
                                                           last Friday; 2#1: the first Monday)
    year          1970-2199             , - * /

One of day-of-month and day-of-week is `?` and the other is not: AWS cannot say "the 13th or
a Friday". L, W and # stand alone in their field. Times are UTC. A range runs from low to high
(22-2 is refused: write 22-23,0-2). Names are case-insensitive. Not a general cron: 5-field
(Unix) expressions are refused, because the same numbers mean other days there (1 is Monday in
Unix cron, Sunday here). No library speaks this dialect (croniter and Celery's parser are Unix
cron), hence this module.
"""

import calendar
import re
from dataclasses import dataclass
from datetime import datetime

MAX_LENGTH = 256  # AWS: maintenanceWindows[].startTime is 1-256 characters
EXAMPLE = "cron(0 2 ? * MON-FRI *)"
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_WRAPPED = re.compile(r"cron\(([^()]*)\)")
_CHARACTERS = re.compile(r"[0-9A-Za-z ,*?/#-]*")
_ITEM = re.compile(r"(\*|[A-Z0-9]{1,4})(?:-([A-Z0-9]{1,4}))?(?:/([0-9]{1,4}))?")


class CronError(ValueError):
    """Not an AWS cron expression; the message says which field and why."""


@dataclass(frozen=True)
class Field:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is low + i
    steps: bool = True  # AWS's table allows / in every field but day-of-week

    @property
    def span(self) -> str:
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{names}"


MINUTES = Field("minutes", 0, 59)
HOURS = Field("hours", 0, 23)
DAY_OF_MONTH = Field("day-of-month", 1, 31)
MONTH = Field("month", 1, 12, MONTHS)
DAY_OF_WEEK = Field("day-of-week", 1, 7, WEEKDAYS, steps=False)
YEAR = Field("year", 1970, 2199)


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the values each field allows, and the one day rule in force."""

    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    days: frozenset[int] = frozenset()  # day-of-month values, or
    last_day: bool = False  # day-of-month L
    nearest_weekday: int | None = None  # day-of-month nW
    weekdays: frozenset[int] = frozenset()  # day-of-week values (1 = Sunday), or
    last_weekday: int | None = None  # day-of-week nL
    nth_weekday: tuple[int, int] | None = None  # day-of-week n#k: (n, k)

    def matches(self, moment: datetime) -> bool:
        """Does the expression fire at this minute (moment in UTC)?"""
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and moment.year in self.years
            and self._day_matches(moment)
        )

    def _day_matches(self, moment: datetime) -> bool:
        day, length = moment.day, calendar.monthrange(moment.year, moment.month)[1]
        weekday = (moment.weekday() + 1) % 7 + 1  # AWS: Sunday 1 … Saturday 7
        if self.last_day:
            return day == length
        if self.nearest_weekday is not None:
            return day == _nearest_weekday(moment.year, moment.month, self.nearest_weekday)
        if self.last_weekday is not None:
            return weekday == self.last_weekday and day + 7 > length
        if self.nth_weekday is not None:
            return weekday == self.nth_weekday[0] and (day - 1) // 7 + 1 == self.nth_weekday[1]
        return day in self.days if self.days else weekday in self.weekdays


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    """The weekday (Mon-Fri) nearest `day` without leaving the month (Quartz's W, which AWS's
    dialect follows): a Saturday moves to Friday (to Monday on the 1st), a Sunday to Monday (to
    Friday on the last day). None when the month has no such day (31W in April)."""
    length = calendar.monthrange(year, month)[1]
    if day > length:
        return None
    weekday = calendar.weekday(year, month, day)  # Monday 0 … Sunday 6
    if weekday == calendar.SATURDAY:
        return day + 2 if day == 1 else day - 1
    if weekday == calendar.SUNDAY:
        return day - 2 if day == length else day + 1
    return day


def parse(expression: object) -> Cron:
    """The expression parsed, or CronError naming the field at fault."""
    if not isinstance(expression, str):
        raise CronError(f"Must be a string like {EXAMPLE}.")
    if not 1 <= len(expression) <= MAX_LENGTH:
        raise CronError(f"Must be 1 to {MAX_LENGTH} characters.")
    wrapped = _WRAPPED.fullmatch(expression)
    if wrapped is None:
        raise CronError(
            "Must be an AWS cron expression, cron(minutes hours day-of-month month day-of-week "
            f"year) in UTC, e.g. {EXAMPLE}."
        )
    if _CHARACTERS.fullmatch(wrapped.group(1)) is None:
        odd = next(c for c in wrapped.group(1) if _CHARACTERS.fullmatch(c) is None)
        raise CronError(
            f"Has {odd!r}: the fields are separated by spaces and hold digits, names and "
            ", - * ? / L W # only."
        )
    parts = [part for part in wrapped.group(1).split(" ") if part]
    if len(parts) != 6:
        raise CronError(
            f"Needs 6 fields (minutes hours day-of-month month day-of-week year), not "
            f"{len(parts)}, e.g. {EXAMPLE}."
        )
    minutes, hours, day_of_month, month, day_of_week, year = (part.upper() for part in parts)
    return Cron(
        minutes=_values(minutes, MINUTES),
        hours=_values(hours, HOURS),
        months=_values(month, MONTH),
        years=_values(year, YEAR),
        **_day_rule(day_of_month, day_of_week),
    )


def _day_rule(day_of_month: str, day_of_week: str) -> dict:
    if (day_of_month == "?") == (day_of_week == "?"):
        raise CronError(
            "Exactly one of day-of-month and day-of-week must be '?' (AWS cannot combine them): "
            "cron(0 2 1 * ? *) for the 1st, cron(0 2 ? * MON *) for Mondays."
        )
    if day_of_week == "?":
        if day_of_month == "L":
            return {"last_day": True}
        if day_of_month.endswith("W"):
            return {"nearest_weekday": _number(day_of_month[:-1], DAY_OF_MONTH, "W")}
        return {"days": _values(day_of_month, DAY_OF_MONTH)}
    if day_of_week == "L":
        return {"weekdays": frozenset({DAY_OF_WEEK.high})}  # the last day of the week: Saturday
    if day_of_week.endswith("L"):
        return {"last_weekday": _number(day_of_week[:-1], DAY_OF_WEEK, "L")}
    if "#" in day_of_week:
        weekday, _, nth = day_of_week.partition("#")
        if not nth.isascii() or not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise CronError(
                f"day-of-week: in {day_of_week!r} the week after # must be 1 to 5 (2#1: the "
                "first Monday); # stands alone, without lists."
            )
        return {"nth_weekday": (_number(weekday, DAY_OF_WEEK, "#"), int(nth))}
    return {"weekdays": _values(day_of_week, DAY_OF_WEEK)}


def _number(text: str, field: Field, suffix: str) -> int:
    """The single value before L, W or # (which stand alone in their field)."""
    try:
        return _value(text, field)
    except CronError:
        raise CronError(
            f"{field.label}: {text + suffix!r} needs one value of {field.span} before {suffix} "
            "(and stands alone, without lists or ranges)."
        ) from None


def _values(text: str, field: Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values |= _item(item, field)
    return frozenset(values)


def _item(item: str, field: Field) -> set[int]:
    """One list item: *, v, a-b, each optionally /step (a/step runs from a to the end)."""
    found = _ITEM.fullmatch(item)
    if found is None:
        raise CronError(
            f"{field.label}: {item!r} is not a value, range or step of {field.span} (, - * / only)."
        )
    start, end, step = found.groups()
    if step is not None and not field.steps:
        raise CronError(f"{field.label}: {item!r}: AWS allows no / in {field.label}.")
    if start == "*":
        if end is not None:
            raise CronError(f"{field.label}: {item!r}: * takes no range.")
        low, high = field.low, field.high
    else:
        low = _value(start, field)
        high = _value(end, field) if end is not None else (field.high if step else low)
    if low > high:
        raise CronError(
            f"{field.label}: the range {item!r} runs backwards; list both parts instead "
            "(22-23,0-2)."
        )
    stride = int(step) if step is not None else 1
    if not 1 <= stride <= field.high - field.low:
        raise CronError(
            f"{field.label}: the step in {item!r} must be 1 to {field.high - field.low}."
        )
    return set(range(low, high + 1, stride))


def _value(text: str, field: Field) -> int:
    if text in field.names:
        return field.low + field.names.index(text)
    if text.isascii() and text.isdigit() and field.low <= int(text) <= field.high:
        return int(text)
    raise CronError(f"{field.label}: {text!r} is not in {field.span}.")
