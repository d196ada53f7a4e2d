"""Which target devices a rollout takes, in which wave, and why the others are left out: one SQL
relation that both the preview and the start read, so they agree device for device.

A device's `position` is PostgreSQL's hashtextextended('<rollout_id>:<device_id>', 0), stable
across sessions and versions ≥ 11. Included devices are taken in position order: wave 1 takes
its count, its percentage of the remaining (rounded up) or the remaining that match its filter,
then wave 2 from what is left, and so on. Targets no wave takes are left out with the reason
"no_wave" (the preview shows them; end with a 100 % wave to reach everyone). Exclusions are
checked in the order of EXCLUSIONS; a device gets the first that applies.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    CharField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Concat
from django.utils import timezone

from devices import lifecycle
from devices.group_filters import compile_filters
from devices.models import Device
from firmware.jobs import compatible
from firmware.models import FirmwareVersion
from firmware.rollouts import windows
from firmware.rollouts.choices import RolloutKind, WaveSelector
from firmware.rollouts.models import DEVICE_LOCAL, Rollout, RolloutDevice, Wave
from fleetportal import versions

EXCLUSIONS = {
    "decommissioned": "Decommissioned",
    "incompatible": "Another device type or hardware version",
    "already_on_version": "Already runs the version",
    "security_version_down": "Its security version would go down",
    "offline": "Offline longer than the rollout setting (or never seen)",
    "in_another_rollout": "In another active rollout",
    "no_wave": "No wave takes it",
}


@dataclass
class Relation:
    """The rollout's devices as SQL: columns id, device_id, position, reason, wave, zone_key_*."""

    sql: str
    params: list[Any]
    zone_keys: int


def target_condition(rollout: Rollout) -> Q:
    """The devices the rollout names and its groups' members (static or dynamic) now."""
    condition = Q(pk__in=rollout.target_devices.values("pk"))
    for group in rollout.target_groups.all():
        condition |= group.membership()
    return condition


def _position(rollout: Rollout) -> Func:
    key = Concat(Value(f"{rollout.rollout_id}:"), F("device_id"), output_field=CharField())
    return Func(key, Value(0), function="hashtextextended", output_field=BigIntegerField())


def _security_down(rollout: Rollout, firmware: FirmwareVersion) -> Q:
    """Devices running a version of higher security version than the firmware; a rollback
    lets down the devices on the versions it lists."""
    higher = FirmwareVersion.objects.filter(
        device_type=firmware.device_type, security_version__gt=firmware.security_version
    ).values_list("version", flat=True)
    running = [v for v in higher if versions.is_version(v)]
    if rollout.kind == RolloutKind.ROLLBACK:
        running = [v for v in running if v not in rollout.rollback_allowed_versions]
    return Q(firmware_version__in=running) if running else Q(pk__in=[])


def _reason(rollout: Rollout, now) -> Case:
    offline_since = now - timedelta(hours=settings.ROLLOUT_OFFLINE_HOURS)
    elsewhere = RolloutDevice.objects.filter(device=OuterRef("pk"), active=True).exclude(
        rollout_id=rollout.pk
    )
    rules: list[tuple[str, Q | Exists]] = [("decommissioned", Q(status__in=lifecycle.TERMINAL))]
    if rollout.firmware is not None:
        firmware = rollout.firmware
        rules += [
            ("incompatible", ~compatible(firmware)),
            ("already_on_version", Q(firmware_version=firmware.version)),
            ("security_version_down", _security_down(rollout, firmware)),
        ]
    rules += [
        ("offline", Q(last_seen__isnull=True) | Q(last_seen__lt=offline_since)),
        ("in_another_rollout", Exists(elsewhere)),
    ]
    whens = [When(condition, then=Value(reason)) for reason, condition in rules]
    return Case(*whens, default=Value(None), output_field=CharField())


def candidates(rollout: Rollout, waves: list[Wave], now) -> QuerySet:
    """Every target device with its position, exclusion reason, one flag per filter wave and
    the metadata/location keys its zone is read from."""
    annotations: dict[str, Any] = {"position": _position(rollout), "reason": _reason(rollout, now)}
    for wave in waves:
        if wave.selector == WaveSelector.FILTER:
            condition = compile_filters(wave.filter or {})
            annotations[f"f{wave.number}"] = ExpressionWrapper(condition, BooleanField())
    for index, spec in enumerate(windows.DEVICE_ZONE_KEYS):
        column, key = spec
        annotations[f"zone_key_{index}"] = KeyTextTransform(key, column)
    queryset = Device.objects.filter(target_condition(rollout)).annotate(**annotations)
    return queryset.values("id", "device_id", *annotations)


def _take(wave: Wave, source: str) -> str:
    """The SELECT of the ids wave `wave` takes from the CTE `source` (position order)."""
    where = f"WHERE f{wave.number}" if wave.selector == WaveSelector.FILTER else ""
    if wave.selector == WaveSelector.COUNT:
        limit = f"rn <= {int(wave.count or 0)}"
    elif wave.selector == WaveSelector.PERCENT:
        limit = f"rn <= ceil(total * {float(wave.percent or 0)!r} / 100.0)"
    else:
        limit = "TRUE"
    return (
        f"SELECT id FROM (SELECT id, row_number() OVER (ORDER BY position, id) AS rn, "  # noqa: S608
        f"count(*) OVER () AS total FROM {source} {where}) AS s WHERE {limit}"
    )


def relation(rollout: Rollout, waves: list[Wave], now=None) -> Relation:
    """The rollout's devices with their wave (NULL when left out) and reason, as SQL that
    the preview and the start both select from. A constant number of CTEs per wave."""
    now = now or timezone.now()
    base, params = candidates(rollout, waves, now).query.sql_with_params()
    ctes = [f"base AS ({base})", "r0 AS (SELECT * FROM base WHERE reason IS NULL)"]
    takes = []
    for wave in waves:
        n, previous = wave.number, f"r{wave.number - 1}"
        ctes.append(f"a{n} AS ({_take(wave, previous)})")
        ctes.append(
            f"r{n} AS (SELECT * FROM {previous} p "  # noqa: S608
            f"WHERE NOT EXISTS (SELECT 1 FROM a{n} WHERE a{n}.id = p.id))"
        )
        takes.append(f"SELECT id, {n} AS wave FROM a{n}")  # noqa: S608
    assigned = " UNION ALL ".join(takes) or "SELECT NULL::uuid AS id, NULL::int AS wave"
    ctes.append(f"assigned AS ({assigned})")
    sql = (
        "WITH " + ", ".join(ctes) + " SELECT base.*, assigned.wave, "
        "CASE WHEN assigned.wave IS NULL THEN coalesce(base.reason, 'no_wave') END AS why "
        "FROM base LEFT JOIN assigned ON assigned.id = base.id"
    )
    return Relation(sql, list(params), len(windows.DEVICE_ZONE_KEYS))


def zones(rollout: Rollout, rel: Relation, cursor) -> tuple[str, list[Any]]:
    """The SQL expression of each included device's time zone over the relation aliased `d`,
    with its parameters: the rollout's zone, or for device-local windows each distinct set of
    zone keys resolved once by windows.device_zone (a few rows, never one per device)."""
    if rollout.window_timezone != DEVICE_LOCAL:
        return "%s::text", [rollout.window_timezone]
    keys = [f"zone_key_{i}" for i in range(rel.zone_keys)]
    cursor.execute(
        f"SELECT DISTINCT {', '.join(keys)} FROM ({rel.sql}) AS d WHERE d.why IS NULL",  # noqa: S608
        rel.params,
    )
    rows = cursor.fetchall()
    fallback = rollout.window_fallback_timezone
    resolved = [windows.device_zone(*_sources(row), fallback) for row in rows]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
    unnest = ", ".join("%s::text[]" for _ in [*keys, "zone"])
    match = " AND ".join(f"z.k{i} IS NOT DISTINCT FROM d.{key}" for i, key in enumerate(keys))
    names = ", ".join([*(f"k{i}" for i in range(len(keys))), "zone"])
    expression = (
        f"coalesce((SELECT z.zone FROM unnest({unnest}) AS z({names}) WHERE {match}), 'UTC')"  # noqa: S608
    )
    return expression, [*(list(c) for c in columns), resolved]


def _sources(row: tuple) -> tuple[dict, dict]:
    """The metadata and location documents device_zone reads, rebuilt from the key values."""
    sources: dict[str, dict] = {"metadata": {}, "location": {}}
    for spec, value in zip(windows.DEVICE_ZONE_KEYS, row, strict=True):
        column, key = spec
        if value is not None:
            sources.setdefault(column, {})[key] = value
    return sources["metadata"], sources["location"]
