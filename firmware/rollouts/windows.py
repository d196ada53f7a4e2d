"""PLACEHOLDER for r-spread's module (maintenance windows per device zone); the lead takes the
owner's version at merge. Only the signatures r-svc codes against, with the simplest behaviour."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

# "column.key": where a device's zone is read, first found wins.
DEVICE_ZONE_KEYS = ("metadata.timezone", "location.timezone")


def device_zone(metadata: dict | None, location: dict | None, fallback: str) -> str:
    sources = {"metadata": metadata or {}, "location": location or {}}
    for spec in DEVICE_ZONE_KEYS:
        column, key = spec.split(".", 1)
        value = sources[column].get(key) if isinstance(sources[column], dict) else None
        if isinstance(value, str) and value in available_timezones():
            return value
    return fallback


def check_window(cron: str, duration: int | None, zone: str) -> dict[str, str]:
    errors = {}
    if zone != "device_local" and zone not in available_timezones():
        errors["timezone"] = f"Unknown time zone {zone!r}."
    if cron and not duration:
        errors["duration_in_minutes"] = "A window needs a duration."
    return errors


def open_zones(cron: str, duration: int, zones: Iterable[str], now: datetime) -> set[str]:
    return set(zones)


def next_opening(cron: str, duration: int, zone: str, after: datetime) -> datetime | None:
    return None if not cron else after.astimezone(ZoneInfo(zone)) + timedelta(0)
