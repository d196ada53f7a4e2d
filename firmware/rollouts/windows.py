"""Maintenance windows in each device's own time zone — pure functions over zoneinfo, no Django.

A window is an AWS cron expression (firmware.aws_cron: the same dialect a job's
maintenanceWindows take) read as *wall-clock time in a zone*, plus a duration in minutes. A
rollout's zone is an IANA name or "device_local": each device's zone from its metadata or
location (DEVICE_ZONE_KEYS), else the fallback. An empty cron means no window: always open.

Daylight saving time, decided here once (RFC 5545 §3.3.5 does the same):
- a start that does not exist (02:30 in Europe/Berlin on the spring-forward day: clocks jump
  from 02:00 to 03:00) opens at the same distance after the jump, 03:30 CEST, with its full
  duration — the night's window is moved, never skipped;
- a start that occurs twice (02:30 on the fall-back day) opens once, at the first 02:30 (CEST),
  and lasts its duration in real minutes.
Durations are always real elapsed minutes, so a 60-minute window is 60 minutes on DST days too.

Not read: a device's latitude/longitude. Turning coordinates into a zone needs a boundary
database (timezonefinder, ~50 MB of polygons) for a question the device or operator can answer
by writing metadata["timezone"].
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from firmware.aws_cron import Cron, CronError, parse

DEVICE_LOCAL = "device_local"  # = firmware.rollouts.models.DEVICE_LOCAL (no Django import here)
# Where a device's zone is read, in this order: the first known IANA name wins.
DEVICE_ZONE_KEYS: tuple[tuple[str, str], ...] = (("metadata", "timezone"), ("location", "timezone"))
MIN_DURATION, MAX_DURATION = 1, 1430  # minutes; AWS's maintenanceWindows[].durationInMinutes
MAX_ZONE_LENGTH = 64  # Rollout.window_timezone / RolloutDevice.time_zone
HORIZON_DAYS = 366  # next_opening looks this far ahead
_MINUTE = timedelta(minutes=1)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: object) -> bool:
    """A known IANA zone name (membership in the tz database, so no file path, NUL or other
    hostile text ever reaches ZoneInfo)."""
    return isinstance(name, str) and len(name) <= MAX_ZONE_LENGTH and name in _known_zones()


def device_zone(metadata: dict | None, location: dict | None, fallback: str) -> str:
    """The device's IANA zone from DEVICE_ZONE_KEYS; a missing or unknown one gives fallback."""
    sources = {"metadata": metadata, "location": location}
    for source, key in DEVICE_ZONE_KEYS:
        values = sources[source]
        if isinstance(values, dict) and is_zone(values.get(key)):
            return values[key]
    return fallback


def check_window(cron: str, duration: int | None, zone: str) -> dict[str, str]:
    """{} for a valid window, else {model field: message}; never raises on hostile input."""
    errors: dict[str, str] = {}
    if not (zone == DEVICE_LOCAL or is_zone(zone)):
        # Shown escaped: a NUL or control character must not reach the reply as such.
        shown = zone[:64].encode("unicode_escape").decode() if isinstance(zone, str) else "?"
        errors["window_timezone"] = (
            f'Unknown time zone "{shown}": must be an IANA time zone such as "Europe/Berlin", '
            f'or "{DEVICE_LOCAL}" for each device\'s own zone.'
        )
    if cron == "" and duration is None:
        return errors
    if cron == "":
        errors["window_cron"] = "A window duration needs its start: an AWS cron expression."
        return errors
    try:
        parse(cron)
    except CronError as error:
        errors["window_cron"] = str(error)
    if isinstance(duration, bool) or not isinstance(duration, int):
        errors["window_duration_minutes"] = "A window needs its duration in minutes (1 to 1430)."
    elif not MIN_DURATION <= duration <= MAX_DURATION:
        errors["window_duration_minutes"] = (
            f"Must be {MIN_DURATION} to {MAX_DURATION} minutes (AWS's limit: under a day)."
        )
    return errors


def open_zones(cron: str, duration: int, zones: Iterable[str], now: datetime) -> set[str]:
    """The zones inside a window at `now`: one started less than `duration` minutes ago in
    that zone's local time. Cached per (cron, duration, zone, minute): a tick asking about a few
    hundred distinct zones computes each once per minute."""
    minute = now.replace(second=0, microsecond=0)
    if not cron:
        return set(zones)
    return {zone for zone in set(zones) if _open_at(cron, duration, zone, minute)}


@lru_cache(maxsize=8192)
def _open_at(cron: str, duration: int, zone: str, minute: datetime) -> bool:
    latest = _latest_start(parse_cached(cron), ZoneInfo(zone), minute)
    return latest is not None and minute < latest + timedelta(minutes=duration)


def next_opening(cron: str, duration: int, zone: str, after: datetime) -> datetime | None:
    """When a window next opens in `zone` (`after` itself when one is open), in UTC; None when
    none opens within a year (cron(0 2 30 2 ? *): there is no 30 February)."""
    if not cron or _open_at(cron, duration, zone, after.replace(second=0, microsecond=0)):
        return after
    tz, parsed = ZoneInfo(zone), parse_cached(cron)
    local = after.astimezone(tz)
    for offset in range(HORIZON_DAYS + 1):
        for start in _starts_on(parsed, local.date() + timedelta(days=offset), tz):
            if start > after:
                return start
    return None


def _latest_start(cron: Cron, tz: ZoneInfo, minute: datetime) -> datetime | None:
    """The latest window start (UTC) at or before `minute`, within the last MAX_DURATION
    minutes (a longer-ago start has closed whatever its duration)."""
    earliest = minute - timedelta(minutes=MAX_DURATION)
    local = minute.astimezone(tz).date()
    for offset in (0, 1, 2):
        found = [s for s in _starts_on(cron, local - timedelta(days=offset), tz) if s <= minute]
        if found:
            return found[-1] if found[-1] >= earliest else None
    return None


def _starts_on(cron: Cron, day: date, tz: ZoneInfo) -> list[datetime]:
    """The window starts (UTC, ascending) whose wall-clock time falls on `day` in `tz`."""
    first_hour, first_minute = min(cron.hours), min(cron.minutes)
    if not cron.matches(datetime(day.year, day.month, day.day, first_hour, first_minute)):
        return []  # the day, month and year do not match (hours/minutes surely do)
    starts = set()
    for hour in cron.hours:
        for minute in cron.minutes:
            # fold=0: a nonexistent time takes the offset before the gap (moved forward by the
            # gap), a repeated one its first occurrence — see the module docstring.
            wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
            starts.add(wall.astimezone(UTC))
    return sorted(starts)


@lru_cache(maxsize=256)
def parse_cached(cron: str) -> Cron:
    return parse(cron)
