"""Times PostgreSQL can store: checked at the door, so a filter never fails in the database.

Python accepts UTC offsets up to ±23:59, PostgreSQL only up to ±15:59 (it answers "time zone
displacement out of range"), and a relative time far enough back leaves Python's calendar.
"""

import datetime

MAX_OFFSET = datetime.timedelta(hours=15, minutes=59, seconds=59)
OFFSET_ERROR = "Time-zone offsets must be within ±15:59."


def offset_in_range(value: datetime.datetime) -> bool:
    offset = value.utcoffset()
    return offset is None or abs(offset) <= MAX_OFFSET


def ago(now: datetime.datetime, **amount: int) -> datetime.datetime | None:
    """now minus a duration, or None when that is before year 1 (or not a duration at all)."""
    try:
        return now - datetime.timedelta(**amount)
    except OverflowError:
        return None
