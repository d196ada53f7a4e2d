"""A rollout's fields as the REST API takes them, checked and turned into an unsaved Rollout and
its Waves. Every problem is collected under its top-level field ({"waves": ["2.percent: …"]}),
and nothing is written here: services.create_rollout saves only what passed.

Ranges (docs/rollouts.md): deadlines 1-10080 minutes (a week); threshold percent 0.01-100,
threshold count ≥ 1; min_finished 1-100000; soak 0-10080 minutes; max_in_flight ≥ 1;
health online minutes 1-1440; promotion margin 0-100; download concurrency 1-100000; a window's
duration 1-1440 minutes.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from devices.group_filters import FilterError, validate_filters
from firmware import configs
from firmware.rollouts import windows
from firmware.rollouts.choices import (
    Failure,
    FailureAction,
    RolloutKind,
    WaveGate,
    WaveSelector,
)
from firmware.rollouts.models import DEVICE_LOCAL, Rollout, Wave

WEEK_MINUTES = 7 * 24 * 60
MAX_WAVES = 20
KNOWN = {
    "rollout_id", "description", "kind", "firmware", "template", "document_parameters",
    "targets", "waves", "rate", "retry", "failure_policy", "deadlines", "health", "window",
    "download_concurrency", "approval_required", "rollback", "start_at",
}  # fmt: skip


@dataclass
class Problems:
    """Messages per top-level field, in the order found."""

    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, message: str) -> None:
        self.by_field.setdefault(key, []).append(message)

    def raise_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _int(value: Any, low: int, high: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value >= low and (high is None or value <= high) else None


def _decimal(value: Any, low: str, high: str) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number.as_tuple().exponent < -2:  # type: ignore[operator]
        return None
    return number if Decimal(low) <= number <= Decimal(high) else None


def _object(fields: dict, key: str, allowed: set[str], problems: Problems) -> dict:
    value = fields.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, "Must be an object.")
        return {}
    if unknown := sorted(set(value) - allowed):
        problems.add(key, "Unknown keys: " + ", ".join(unknown) + ".")
    return value


def build(fields: dict[str, Any], *, now: datetime) -> tuple[Rollout, list[Wave]]:
    """The unsaved rollout and waves, or ValidationError naming every bad field. Targets and
    the firmware's downgrade are checked by the service (they need the database's rows)."""
    problems = Problems()
    if unknown := sorted(set(fields) - KNOWN):
        problems.add("non_field_errors", "Unknown fields: " + ", ".join(unknown) + ".")
    rollout = Rollout(
        rollout_id=fields.get("rollout_id") or "",
        description=fields.get("description") or "",
        kind=fields.get("kind") or RolloutKind.UPDATE,
        approval_required=bool(fields.get("approval_required")),
        rate_config=fields.get("rate") or {},
        retry_config=fields.get("retry") or {},
        created_at=now,
    )
    if rollout.kind not in RolloutKind.values:
        problems.add("kind", "Must be one of: " + ", ".join(RolloutKind.values) + ".")
    for key, errors in configs.validate(
        {"rollout": fields.get("rate"), "retry": fields.get("retry")}, now=now
    ).items():
        for message in errors:
            problems.add("rate" if key == "rollout" else key, message)
    _failure_policy(rollout, fields, problems)
    _deadlines(rollout, fields, problems)
    _health(rollout, fields, problems)
    _window(rollout, fields, problems)
    _rollback(rollout, fields, problems)
    _start_at(rollout, fields, now, problems)
    if (concurrency := fields.get("download_concurrency")) is not None:
        rollout.download_concurrency = _int(concurrency, 1, 100_000)
        if rollout.download_concurrency is None:
            problems.add("download_concurrency", "Must be a whole number from 1 to 100000.")
    waves = _waves(fields.get("waves"), problems)
    try:
        rollout.full_clean(
            exclude=["firmware", "template", "target_devices", "target_groups", "kind"],
            validate_unique=False,
        )
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            for message in messages:
                problems.add(key, message)
    problems.raise_any()
    return rollout, waves


def _failure_policy(rollout: Rollout, fields: dict, problems: Problems) -> None:
    allowed = {"threshold_count", "threshold_percent", "min_finished", "counts", "action"}
    policy = _object(fields, "failure_policy", allowed, problems)
    count, percent = policy.get("threshold_count"), policy.get("threshold_percent")
    if count is not None and percent is not None:
        problems.add("failure_policy", "Give threshold_count or threshold_percent, not both.")
    if count is not None:
        rollout.failure_threshold_count = _int(count, 1, None)
        if rollout.failure_threshold_count is None:
            problems.add("failure_policy", "threshold_count: must be a whole number ≥ 1.")
    if percent is not None:
        rollout.failure_threshold_percent = _decimal(percent, "0.01", "100")
        if rollout.failure_threshold_percent is None:
            problems.add("failure_policy", "threshold_percent: must be 0.01-100 (2 decimals).")
    minimum = policy.get("min_finished", 1)
    rollout.failure_min_finished = _int(minimum, 1, 100_000) or 1
    if _int(minimum, 1, 100_000) is None:
        problems.add("failure_policy", "min_finished: must be a whole number from 1 to 100000.")
    counts = policy.get("counts", list(Failure.values))
    if not isinstance(counts, list) or not counts or set(counts) - set(Failure.values):
        problems.add("failure_policy", "counts: a non-empty list of " + ", ".join(Failure.values))
    else:
        rollout.failure_kinds = list(dict.fromkeys(counts))
    rollout.failure_action = policy.get("action", FailureAction.PAUSE)
    if rollout.failure_action not in FailureAction.values:
        problems.add("failure_policy", "action: one of " + ", ".join(FailureAction.values) + ".")


def _deadlines(rollout: Rollout, fields: dict, problems: Problems) -> None:
    deadlines = _object(fields, "deadlines", {"start_minutes", "finish_minutes"}, problems)
    for key, attribute in (
        ("start_minutes", "start_deadline_minutes"),
        ("finish_minutes", "finish_deadline_minutes"),
    ):
        if key not in deadlines:
            continue
        minutes = _int(deadlines[key], 1, WEEK_MINUTES)
        if minutes is None:
            problems.add("deadlines", f"{key}: must be a whole number from 1 to {WEEK_MINUTES}.")
        else:
            setattr(rollout, attribute, minutes)


def _health(rollout: Rollout, fields: dict, problems: Problems) -> None:
    allowed = {"online_minutes", "bounds", "promotion_margin_percent"}
    health = _object(fields, "health", allowed, problems)
    if "online_minutes" in health:
        minutes = _int(health["online_minutes"], 1, 1440)
        if minutes is None:
            problems.add("health", "online_minutes: must be a whole number from 1 to 1440.")
        else:
            rollout.health_online_minutes = minutes
    if health.get("bounds"):
        try:
            validate_filters(health["bounds"])
            rollout.health_bounds = health["bounds"]
        except FilterError as exc:
            for message in exc.messages:
                problems.add("health", f"bounds: {message}")
    if "promotion_margin_percent" in health:
        margin = _decimal(health["promotion_margin_percent"], "0", "100")
        if margin is None:
            problems.add("health", "promotion_margin_percent: must be 0-100 (2 decimals).")
        else:
            rollout.promotion_margin_percent = margin


def _window(rollout: Rollout, fields: dict, problems: Problems) -> None:
    window = _object(
        fields, "window", {"cron", "duration_in_minutes", "timezone", "fallback_timezone"}, problems
    )
    cron, duration = window.get("cron") or "", window.get("duration_in_minutes")
    zone = window.get("timezone") or "UTC"
    fallback = window.get("fallback_timezone") or "UTC"
    if not all(isinstance(value, str) for value in (cron, zone, fallback)):
        problems.add("window", "cron, timezone and fallback_timezone must be strings.")
        return
    if zone != DEVICE_LOCAL and "fallback_timezone" in window:
        problems.add("window", 'fallback_timezone: only with timezone "device_local".')
        return
    if not windows.is_zone(fallback):
        problems.add("window", 'fallback_timezone: must be an IANA time zone such as "UTC".')
        return
    if duration is not None and _int(duration, 1, 1440) is None:
        problems.add("window", "duration_in_minutes: must be a whole number from 1 to 1440.")
        return
    # The window module checks the cron in the zone; device_local is checked in UTC (each
    # device's zone falls back to a valid one).
    for key, message in windows.check_window(
        cron, duration, fallback if zone == DEVICE_LOCAL else zone
    ).items():
        problems.add("window", f"{key}: {message}")
    rollout.window_cron, rollout.window_duration_minutes = cron, duration
    rollout.window_timezone, rollout.window_fallback_timezone = zone, fallback


def _rollback(rollout: Rollout, fields: dict, problems: Problems) -> None:
    rollback = _object(fields, "rollback", {"reason", "allowed_versions"}, problems)
    reason = rollback.get("reason") or ""
    allowed = rollback.get("allowed_versions") or []
    if not isinstance(reason, str) or len(reason) > 500:
        problems.add("rollback", "reason: a text of at most 500 characters.")
        return
    if not isinstance(allowed, list) or not all(isinstance(v, str) and v for v in allowed):
        problems.add("rollback", "allowed_versions: a list of version strings.")
        return
    if rollout.kind == RolloutKind.ROLLBACK and not reason.strip():
        problems.add("rollback", "reason: a rollback needs a reason.")
    if rollout.kind != RolloutKind.ROLLBACK and rollback:
        problems.add("rollback", "Only a rollout of kind rollback takes a rollback block.")
    rollout.rollback_reason, rollout.rollback_allowed_versions = reason.strip(), allowed


def _start_at(rollout: Rollout, fields: dict, now: datetime, problems: Problems) -> None:
    if fields.get("start_at") is None:
        return
    start_at = configs.parse_time(fields["start_at"])
    if start_at is None:
        problems.add("start_at", "Must be an ISO 8601 time with a zone.")
    elif start_at <= now:
        problems.add("start_at", "Must be in the future.")
    else:
        rollout.start_at = start_at


def _waves(value: Any, problems: Problems) -> list[Wave]:
    if not isinstance(value, list) or not value:
        problems.add("waves", "A rollout needs a list of at least one wave.")
        return []
    if len(value) > MAX_WAVES:
        problems.add("waves", f"At most {MAX_WAVES} waves.")
        return []
    waves = [_wave(number, spec, problems) for number, spec in enumerate(value, start=1)]
    # A wave after one that takes every remaining device would be empty.
    for wave in waves[:-1]:
        if wave.selector == WaveSelector.PERCENT and wave.percent == 100:
            problems.add("waves", f"{wave.number + 1}: empty, wave {wave.number} takes 100 %.")
            break
    return waves


def _wave(number: int, spec: Any, problems: Problems) -> Wave:
    wave = Wave(number=number)
    allowed = {"selector", "count", "percent", "filter", "max_in_flight", "soak_minutes", "gate"}
    if not isinstance(spec, dict) or set(spec) - allowed:
        problems.add("waves", f"{number}: an object with keys " + ", ".join(sorted(allowed)))
        return wave
    wave.selector = spec.get("selector") or ""
    wave.gate = spec.get("gate") or WaveGate.AUTOMATIC
    if wave.selector == WaveSelector.COUNT:
        wave.count = _int(spec.get("count"), 1, None)
        if wave.count is None:
            problems.add("waves", f"{number}.count: a whole number ≥ 1 (an empty wave).")
    elif wave.selector == WaveSelector.PERCENT:
        wave.percent = _decimal(spec.get("percent"), "0.01", "100")
        if wave.percent is None:
            problems.add("waves", f"{number}.percent: must be 0.01-100 (2 decimals).")
    elif wave.selector == WaveSelector.FILTER:
        _wave_filter(wave, spec.get("filter"), problems)
    else:
        problems.add("waves", f"{number}.selector: one of " + ", ".join(WaveSelector.values))
    if wave.gate not in WaveGate.values:
        problems.add("waves", f"{number}.gate: one of " + ", ".join(WaveGate.values) + ".")
    if spec.get("max_in_flight") is not None:
        wave.max_in_flight = _int(spec["max_in_flight"], 1, None)
        if wave.max_in_flight is None:
            problems.add("waves", f"{number}.max_in_flight: a whole number ≥ 1.")
    soak = spec.get("soak_minutes", 0)
    if _int(soak, 0, WEEK_MINUTES) is None:
        problems.add("waves", f"{number}.soak_minutes: a whole number 0-{WEEK_MINUTES}.")
    else:
        wave.soak_minutes = soak
    return wave


def _wave_filter(wave: Wave, document: Any, problems: Problems) -> None:
    if not document:
        problems.add("waves", f"{wave.number}.filter: a filter wave needs a filter.")
        return
    try:
        validate_filters(document)
    except FilterError as exc:
        for message in exc.messages:
            problems.add("waves", f"{wave.number}.filter: {message}")
        return
    wave.filter = document
