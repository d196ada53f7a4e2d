"""The dry run: per wave how many devices and the first page of them, the devices left out with
counts per reason and a first page, and the expected timeline (each wave's earliest start given
the pace and soak times, and per time zone the next window opening). A fixed number of queries
whatever the number of devices: the counts and pages come from one window-function query over
the assignment relation, the zones from one more (two with device-local windows).
"""

import math
from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from firmware.rollouts import assignment, windows
from firmware.rollouts.models import Rollout, Wave

PAGE = 20


def preview(rollout: Rollout, *, now: datetime) -> dict[str, Any]:
    waves = list(rollout.waves.all())
    rel = assignment.relation(rollout, waves, now)
    with connection.cursor() as cursor:
        groups = _pages(rel, cursor)
        zones = _zones(rollout, rel, cursor)
    wave_rows = [
        {
            "number": wave.number,
            "selector": wave.selector,
            "device_count": groups.get((wave.number, None), (0, []))[0],
            "first_devices": groups.get((wave.number, None), (0, []))[1],
        }
        for wave in waves
    ]
    excluded = {
        reason: {"label": label, "count": groups[(None, reason)][0], "first_devices": page}
        for reason, label in assignment.EXCLUSIONS.items()
        if (page := groups.get((None, reason), (0, []))[1])
    }
    return {
        "rollout_id": rollout.rollout_id,
        "included": sum(wave["device_count"] for wave in wave_rows),
        "excluded_count": sum(entry["count"] for entry in excluded.values()),
        "waves": wave_rows,
        "excluded": excluded,
        "timeline": timeline(rollout, waves, wave_rows, zones, now),
    }


def _pages(rel: assignment.Relation, cursor) -> dict[tuple, tuple[int, list[str]]]:
    """{(wave, None) or (None, reason): (count, first PAGE device ids in position order)}."""
    cursor.execute(
        "SELECT wave, why, device_id, total FROM ("  # noqa: S608
        "SELECT d.wave, d.why, d.device_id, "
        "row_number() OVER (PARTITION BY d.wave, d.why ORDER BY d.position, d.id) AS rn, "
        f"count(*) OVER (PARTITION BY d.wave, d.why) AS total FROM ({rel.sql}) AS d) AS s "
        "WHERE rn <= %s ORDER BY wave, why, rn",
        [*rel.params, PAGE],
    )
    groups: dict[tuple, tuple[int, list[str]]] = {}
    for wave, why, device_id, total in cursor.fetchall():
        groups.setdefault((wave, why), (total, []))[1].append(device_id)
    return groups


def _zones(rollout: Rollout, rel: assignment.Relation, cursor) -> dict[int, dict[str, int]]:
    """{wave number: {time zone: device count}} of the included devices."""
    expression, params = assignment.zones(rollout, rel, cursor)
    cursor.execute(
        f"SELECT d.wave, {expression} AS zone, count(*) FROM ({rel.sql}) AS d "  # noqa: S608
        "WHERE d.why IS NULL GROUP BY 1, 2 ORDER BY 1, 2",
        [*params, *rel.params],
    )
    zones: dict[int, dict[str, int]] = {}
    for wave, zone, count in cursor.fetchall():
        zones.setdefault(wave, {})[zone] = count
    return zones


def per_minute(rollout: Rollout) -> float | None:
    """The pace inside a wave (AWS's rollout config): maximum, else the exponential's base."""
    rate = rollout.rate_config or {}
    exponential = rate.get("exponential_rate") or {}
    return rate.get("maximum_per_minute") or exponential.get("base_rate_per_minute")


def timeline(
    rollout: Rollout,
    waves: list[Wave],
    wave_rows: list[dict],
    zones: dict[int, dict[str, int]],
    now: datetime,
) -> list[dict[str, Any]]:
    """The earliest each wave can start: the previous one's start + its devices at the pace
    (assuming each finishes at once) + its soak; a manual gate adds an operator's approval.
    Per time zone, when its window next opens from then."""
    start = max(rollout.start_at or now, now)
    entries = []
    for wave, row in zip(waves, wave_rows, strict=True):
        pace = per_minute(rollout)
        release = math.ceil(row["device_count"] / pace) if pace else 0
        entries.append(
            {
                "wave": wave.number,
                "earliest_start": start,
                "release_minutes": release,
                "soak_minutes": wave.soak_minutes,
                "gate": wave.gate,
                "zones": [
                    {
                        "time_zone": zone,
                        "devices": count,
                        "window_opens": _opening(rollout, zone, start),
                    }
                    for zone, count in zones.get(wave.number, {}).items()
                ],
            }
        )
        start = start + timedelta(minutes=release + wave.soak_minutes)
    return entries


def _opening(rollout: Rollout, zone: str, after: datetime) -> datetime | None:
    """When the device's window next opens (None: no window, always open)."""
    if not rollout.window_cron:
        return None
    duration = rollout.window_duration_minutes or 0
    return windows.next_opening(rollout.window_cron, duration, zone, after)
