"""PLACEHOLDER for r-spread's module (maintenance windows in each device's zone): every zone is
always open. The lead takes the owner's version at merge."""

from collections.abc import Iterable
from datetime import datetime

DEVICE_ZONE_KEYS: tuple[str, ...] = ("timezone",)


def device_zone(metadata: dict | None, location: dict | None, fallback: str) -> str:
    return fallback


def check_window(cron: str, duration: int | None, zone: str) -> dict[str, str]:
    return {}


def open_zones(cron: str, duration: int, zones: Iterable[str], now: datetime) -> set[str]:
    return set(zones)


def next_opening(cron: str, duration: int, zone: str, after: datetime) -> datetime | None:
    return after
