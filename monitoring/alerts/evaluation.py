"""Alert rule evaluation: one statement per rule, whatever the number of devices.

For each rule, one SQL statement (data-modifying CTEs, one snapshot):
- `m`: the devices for which the condition holds now — the filter's WHERE clause on the device
  table (the same Q dynamic groups compile), or the devices whose telemetry average passes the
  threshold; decommissioned devices never;
- the rule's AlertCondition rows are kept in step: new matches get `holding_since = now`, devices
  that stopped matching lose their row — so a condition that flickers starts counting again;
- devices holding since `now - for_seconds` or earlier get an alert (one INSERT … ON CONFLICT DO
  NOTHING on the partial unique index of open alerts: two evaluations at once never raise the
  same alert twice);
- open alerts of devices no longer matching are resolved (one UPDATE);
- every raise and resolution becomes a DeviceEvent (one INSERT) and, for a rule with a webhook,
  a WebhookDelivery row (one INSERT) whose sending Celery takes up after the commit.

A disabled rule matches nothing, so disabling one resolves its alerts. `now` is a parameter so
tests (and a replay) control the clock; telemetry averages come from a provider with the
signature of monitoring.telemetry.queries.window_values, also a parameter.
"""

import datetime
import logging
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from devices.group_filters import FilterError, compile_filters
from devices.models import Device, DeviceEvent
from monitoring.alerts import live_events
from monitoring.alerts.choices import AlertEventType, DeliveryStatus, RuleKind
from monitoring.models import Alert, AlertCondition, AlertRule, WebhookDelivery

log = logging.getLogger(__name__)

ValuesProvider = Callable[[str, datetime.timedelta, datetime.datetime], dict[uuid.UUID, float]]

COMPARE = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


@dataclass
class Report:
    """What one evaluation changed."""

    rules: int = 0
    failed: list[str] = field(default_factory=list)
    raised: int = 0
    resolved: int = 0
    deliveries: list[int] = field(default_factory=list)


def evaluate(
    now: datetime.datetime | None = None, *, values: ValuesProvider | None = None
) -> Report:
    """Evaluates every rule at `now` (each in its own transaction); webhooks go after commit."""
    from monitoring.alerts import delivery
    from monitoring.telemetry import queries

    now = now or timezone.now()
    provider = values or queries.window_values
    report = Report()
    for rule in AlertRule.objects.order_by("pk"):
        try:
            with transaction.atomic():
                raised, resolved, deliveries = evaluate_rule(rule, now, provider)
                if deliveries:
                    delivery.send_after_commit(deliveries)
        except (FilterError, DatabaseError) as exc:
            # One broken rule (a filter saved before today's checks, a statement timeout) must
            # not stop the others; it is tried again on the next tick.
            log.error("alert rule %r could not be evaluated: %s", rule.name, exc)
            report.failed.append(rule.name)
            continue
        report.rules += 1
        report.raised += raised
        report.resolved += resolved
        report.deliveries += deliveries
    if report.raised or report.resolved:
        # Once per evaluation, not per rule: the summary page reloads its figures anyway.
        live_events.alerts_changed(raised=report.raised, resolved=report.resolved)
    return report


def evaluate_rule(
    rule: AlertRule, now: datetime.datetime, values: ValuesProvider
) -> tuple[int, int, list[int]]:
    """(raised, resolved, new delivery ids) for one rule, in one statement."""
    matching_sql, matching_params = _matching(rule, now, values)
    sql, params = _statement(rule, now, matching_sql, matching_params)
    with connection.cursor() as cursor:
        cursor.execute(_PLAN)
        cursor.execute(sql, params)
        raised, resolved, deliveries = cursor.fetchone()
    return raised, resolved, deliveries or []


def _matching(rule: AlertRule, now, values: ValuesProvider) -> tuple[str, list]:
    """SQL selecting (id, value) of the devices for which the rule holds now."""
    in_service = Device.objects.in_service()
    if not rule.enabled:
        return "SELECT NULL::uuid AS id, NULL::float8 AS value WHERE false", []
    if rule.kind == RuleKind.FILTER:
        sql, params = (
            in_service.filter(compile_filters(rule.filter)).values("pk").query.sql_with_params()
        )
        return f"SELECT q.pk AS id, NULL::float8 AS value FROM ({sql}) AS q", list(params)  # noqa: S608
    compare, threshold = COMPARE[rule.op], rule.threshold or 0.0  # clean() requires both
    window = datetime.timedelta(seconds=rule.window_seconds or 0)
    passing = {
        pk: value
        for pk, value in values(rule.metric, window, now).items()
        if compare(value, threshold)
    }
    sql, params = in_service.values("pk").query.sql_with_params()
    return (
        "SELECT v.id, v.value FROM unnest(%s::uuid[], %s::float8[]) AS v(id, value) "  # noqa: S608
        f"WHERE v.id IN (SELECT s.pk FROM ({sql}) AS s)",
        [list(passing), list(passing.values()), *params],
    )


# For this transaction only. Every join here is set against set (the matching devices, the
# rule's conditions, its open alerts), and right after a tick raised 100,000 alerts the planner
# still believes the tables hold a few rows (autovacuum analyzes them later): it then picked a
# nested loop over the CTE for the anti-joins — minutes instead of a second at 95,000 open
# alerts (bench/alerts.py). Hash and merge joins are right at every size; the memory keeps their
# sorts off the disk.
_PLAN = "SELECT set_config('enable_nestloop', 'off', true), set_config('work_mem', '64MB', true)"

_CONDITIONS = AlertCondition._meta.db_table
_ALERTS = Alert._meta.db_table
_EVENTS = DeviceEvent._meta.db_table
_DELIVERIES = WebhookDelivery._meta.db_table
_DEVICES = Device._meta.db_table

# The alert's document, as the webhook sends it (`a` an alert row, `d` its device).
_DOCUMENT = """jsonb_build_object(
    'event', a.event, 'state', CASE WHEN a.resolved_at IS NULL THEN 'open' ELSE 'resolved' END,
    'alert', jsonb_build_object('id', a.id, 'severity', a.severity, 'raised_at', a.raised_at,
        'resolved_at', a.resolved_at, 'acknowledged_at', a.acknowledged_at,
        'acknowledged_by', a.acknowledged_by, 'details', a.details),
    'rule', jsonb_build_object('id', %s, 'name', %s, 'kind', %s),
    'device', jsonb_build_object('id', d.id, 'device_id', d.device_id))"""


def _statement(rule: AlertRule, now, matching_sql: str, matching_params: list) -> tuple[str, list]:
    due = now - datetime.timedelta(seconds=rule.for_seconds)
    static = _static_details(rule)
    event_data = (
        "jsonb_build_object('alert', a.id, 'rule', %s, 'rule_id', %s, 'severity', a.severity)"
    )
    parts = [
        f"WITH m AS MATERIALIZED ({matching_sql}),",
        f"""held AS MATERIALIZED (
            SELECT m.id, m.value, COALESCE(c.holding_since, %s) AS since,
                   c.device_id IS NOT NULL AS known
            FROM m LEFT JOIN {_CONDITIONS} c ON c.rule_id = %s AND c.device_id = m.id),
        gone AS (
            DELETE FROM {_CONDITIONS} c WHERE c.rule_id = %s
            AND NOT EXISTS (SELECT 1 FROM m WHERE m.id = c.device_id)),
        added AS (
            INSERT INTO {_CONDITIONS} (rule_id, device_id, holding_since)
            SELECT %s, held.id, %s FROM held WHERE NOT held.known
            ON CONFLICT (rule_id, device_id) DO NOTHING),
        raised AS (
            INSERT INTO {_ALERTS} (rule_id, device_id, severity, raised_at, acknowledged_by,
                                   details)
            SELECT %s, held.id, %s, %s, '',
                   jsonb_strip_nulls(jsonb_build_object('value', held.value)) || %s::jsonb
            FROM held WHERE held.since <= %s AND NOT EXISTS (
                SELECT 1 FROM {_ALERTS} o
                WHERE o.rule_id = %s AND o.device_id = held.id AND o.resolved_at IS NULL)
            ON CONFLICT (rule_id, device_id) WHERE resolved_at IS NULL DO NOTHING
            RETURNING *),
        resolved AS (
            UPDATE {_ALERTS} a SET resolved_at = %s
            WHERE a.rule_id = %s AND a.resolved_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM m WHERE m.id = a.device_id)
            RETURNING a.*),
        changed AS (
            SELECT %s AS event, a.* FROM raised a
            UNION ALL SELECT %s AS event, a.* FROM resolved a),
        events AS (
            INSERT INTO {_EVENTS} (device_id, event_type, event_data, actor, created_at)
            SELECT a.device_id, a.event, {event_data}, 'system', %s FROM changed a)""",  # noqa: S608
    ]
    params = [
        *matching_params,
        now, rule.pk,
        rule.pk,
        rule.pk, now,
        rule.pk, rule.severity, now, static, due, rule.pk,
        now, rule.pk,
        AlertEventType.RAISED, AlertEventType.RESOLVED,
        rule.name, rule.pk, now,
    ]  # fmt: skip
    if rule.webhook_url:
        parts.append(
            f""", sent AS (
            INSERT INTO {_DELIVERIES} (alert_id, rule_id, event, url, payload, status, attempts,
                                       last_error, next_attempt_at, created_at)
            SELECT a.id, %s, a.event, %s, {_DOCUMENT}, %s, 0, '', %s, %s
            FROM changed a JOIN {_DEVICES} d ON d.id = a.device_id
            RETURNING id)
            SELECT (SELECT count(*) FROM raised), (SELECT count(*) FROM resolved),
                   (SELECT array_agg(id ORDER BY id) FROM sent)"""  # noqa: S608
        )
        params += [
            rule.pk, rule.webhook_url,
            rule.pk, rule.name, rule.kind,
            DeliveryStatus.PENDING, now, now,
        ]  # fmt: skip
    else:
        parts.append(" SELECT (SELECT count(*) FROM raised), (SELECT count(*) FROM resolved), NULL")
    return "\n".join(parts), params


def _static_details(rule: AlertRule) -> str:
    import orjson

    if rule.kind == RuleKind.TELEMETRY:
        details = {
            "metric": rule.metric,
            "op": rule.op,
            "threshold": rule.threshold,
            "window_seconds": rule.window_seconds,
        }
    else:
        details = {"for_seconds": rule.for_seconds}
    return orjson.dumps(details).decode()
