"""What makes an alert rule valid: one place, used by AlertRule.clean() (so the admin and the API
refuse with the same words, naming the field).

A rule is either
- kind "filter": a dynamic-group filter (devices/group_filters.py: reported.*, online,
  last_seen, …) and for_seconds, how long a device must keep matching before it alerts; or
- kind "telemetry": a metric's average over window_seconds compared (op) to a threshold, also
  held for for_seconds.
"""

import math
import re
from typing import Any

from devices.group_filters import FilterError, validate_filters
from fleetportal import json_safety
from monitoring.alerts import targets
from monitoring.alerts.choices import RuleKind

MAX_FOR_SECONDS = 30 * 24 * 3600
MIN_WINDOW_SECONDS = 10
MAX_WINDOW_SECONDS = 7 * 24 * 3600
# Thresholds compare with averages of float telemetry: beyond this they are typing mistakes.
MAX_THRESHOLD = 1e15
METRIC = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
TELEMETRY_ONLY = ("metric", "op", "threshold", "window_seconds")


def problems(rule: Any) -> dict[str, list[str]]:
    """{field: [message]} for everything wrong with the rule's fields together; {} when valid."""
    found: dict[str, list[str]] = {}
    if rule.kind == RuleKind.FILTER:
        _check_filter_kind(rule, found)
    elif rule.kind == RuleKind.TELEMETRY:
        _check_telemetry_kind(rule, found)
    if rule.webhook_url:
        errors = targets.url_problems(rule.webhook_url)
        if errors:
            found["webhook_url"] = errors
    return found


def _check_filter_kind(rule: Any, found: dict[str, list[str]]) -> None:
    if not rule.filter:
        found["filter"] = ["A filter rule needs a filter document."]
    else:
        unsafe = json_safety.problem(rule.filter)
        try:
            if unsafe:
                raise FilterError([f"filters: {unsafe}"])
            validate_filters(rule.filter)
        except FilterError as exc:
            found["filter"] = exc.messages
    for name in TELEMETRY_ONLY:
        if getattr(rule, name) not in (None, ""):
            found[name] = ["Only telemetry rules have this field."]


def _check_telemetry_kind(rule: Any, found: dict[str, list[str]]) -> None:
    if rule.filter:
        found["filter"] = ["A telemetry rule has no filter."]
    if not rule.metric:
        found["metric"] = ["A telemetry rule needs the metric it averages."]
    elif not METRIC.fullmatch(rule.metric):
        found["metric"] = ["1 to 64 letters, digits, '_', '.', ':' or '-'."]
    if not rule.op:
        found["op"] = ["A telemetry rule needs a comparison: gt, gte, lt or lte."]
    threshold = rule.threshold
    if threshold is None:
        found["threshold"] = ["A telemetry rule needs a threshold."]
    elif not math.isfinite(threshold) or abs(threshold) > MAX_THRESHOLD:
        found["threshold"] = [f"A finite number within ±{MAX_THRESHOLD:g}."]
    if rule.window_seconds is None:
        found["window_seconds"] = ["A telemetry rule needs the window it averages over."]
