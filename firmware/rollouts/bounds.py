"""A rollout's health bounds (a devices.group_filters document) taken apart for the health check:
its leaves with the polarity the `not`s above them give, and, as SQL on Device, why a device
fails them ("reported.battery was 4, bound: gt 10") — so failing devices are named in one
UPDATE, never one query per device.

`condition(bounds)` compiles the document as group_filters does, except that `reported.*` reads
the classic shadow through one LEFT JOIN (`with_reported`) instead of an EXISTS per leaf and
row: counting four bounds over 100,000 devices is then one hash join, not 400,000 index probes.
Absent shadows read as {} so every leaf stays two-valued (`not` is exact), as in group_filters.

Presence lives here too (`seen_since`), behind one function, so per-connection presence (issue
14) can replace last_seen without touching the health check.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    F,
    FilteredRelation,
    Func,
    JSONField,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Coalesce, Concat

from devices.group_filters import compile_filters, json_condition

MISSING = "missing"
REPORTED = "reported_values"  # the alias with_reported adds


def with_reported(devices):
    """Devices with their classic shadow's reported state as REPORTED ({} without a shadow)."""
    # annotate, not alias: aggregates (health.compare) may only read annotations.
    return devices.annotate(
        classic_shadow=FilteredRelation("shadows", condition=Q(shadows__name="")),
        **{
            REPORTED: Coalesce(
                F("classic_shadow__reported_state"),
                Value({}, output_field=JSONField()),
                output_field=JSONField(),
            )
        },
    )


def condition(node: dict) -> Q:
    """The bounds as a condition on a `with_reported` Device queryset."""
    for key, connector in (("all", Q.AND), ("any", Q.OR)):
        if key in node:
            combined = Q(_connector=connector)
            for child in node[key]:
                combined.add(condition(child), connector)
            return combined
    if "not" in node:
        return ~condition(node["not"])
    family, _, rest = node["field"].partition(".")
    if family != "reported" or not rest:
        return compile_filters(node)
    compile_filters(node)  # validates the leaf
    return _reported(rest.split("."), node["op"], node.get("value", True))


def _reported(keys: list[str], op: str, value) -> Q:
    # group_filters._leaf's rules for ne and exists-false, on the joined state.
    if op == "ne":
        return ~_reported(keys, "eq", value)
    if op == "exists" and not value:
        return ~_reported(keys, "exists", True)
    return json_condition(REPORTED, keys, op, value)


@dataclass(frozen=True)
class Leaf:
    """One condition of the bounds; `holds` is the condition that passes it (negated under an
    odd number of `not`s)."""

    label: str  # "reported.battery gt 10", "not reported.mode eq 'eco'"
    field: str
    holds: Q


def leaves(bounds: dict) -> list[Leaf]:
    """Every leaf of the bounds, in document order."""
    found: list[Leaf] = []
    _collect(bounds, True, found)
    return found


def _collect(node: dict, positive: bool, found: list[Leaf]) -> None:
    for key in ("all", "any"):
        if key in node:
            for child in node[key]:
                _collect(child, positive, found)
            return
    if "not" in node:
        _collect(node["not"], not positive, found)
        return
    holds = condition(node)
    label = f"{'' if positive else 'not '}{describe(node)}"
    found.append(Leaf(label, node["field"], holds if positive else ~holds))


def describe(leaf: dict) -> str:
    """How an operator wrote the bound: "reported.battery gt 10"."""
    value = leaf.get("value", True)
    shown = repr(value) if isinstance(value, str) else _json_text(value)
    return f"{leaf['field']} {leaf['op']} {shown}"


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def failure_reason(bounds: dict) -> Combinable:
    """An expression on a `with_reported` Device queryset: for a device failing the bounds, the
    failing leaves with the value seen ("reported.battery was 4, bound: gt 10"), joined by
    "; ". Only the leaves that make the document fail are named (a passing `any` branch is
    not)."""
    return Coalesce(_reason(bounds, True), Value("bounds not met"), output_field=TextField())


def _reason(node: dict, positive: bool) -> Combinable:
    if "not" in node:
        return _reason(node["not"], not positive)
    if "all" in node or "any" in node:
        children = node.get("all") or node.get("any") or []
        reasons = [_reason(child, positive) for child in children]
        # all (or a negated any) fails when one child fails: name the failing ones. any (or a
        # negated all) fails only when every child fails: name them all, but only then.
        if ("all" in node) == positive:
            return NullIfEmpty(ConcatWords("; ", *reasons))
        holds = condition(node) if positive else ~condition(node)
        return Case(
            When(holds, then=Value(None)),
            default=ConcatWords(" and ", *reasons),
            output_field=TextField(),
        )
    holds = condition(node) if positive else ~condition(node)
    bound = f"{'' if positive else 'not '}{describe(node).split(' ', 1)[1]}"
    seen = Coalesce(value_seen(node["field"]), Value(MISSING), output_field=TextField())
    text = Concat(
        Value(f"{node['field']} was "), seen, Value(f", bound: {bound}"), output_field=TextField()
    )
    return Case(When(holds, then=Value(None)), default=text, output_field=TextField())


def value_seen(field: str) -> Combinable:
    """The device's value of a filter field as text (NULL when it has none)."""
    family, _, rest = field.partition(".")
    if family in ("reported", "metadata", "location") and rest:
        family = REPORTED if family == "reported" else family
        return Cast(_path(F(family), rest.split(".")), TextField())
    column = {"online": "last_seen", "group": "group__name"}.get(field, field)
    return Cast(F(column), TextField())


def _path(expression, keys: list[str]):
    for key in keys:
        expression = KeyTransform(key, expression)
    return expression


class ConcatWords(Func):
    """concat_ws(separator, …): NULL parts are skipped."""

    function = "concat_ws"
    output_field = TextField()

    def __init__(self, separator: str, *parts):
        super().__init__(Value(separator), *parts)


class NullIfEmpty(Func):
    function = "NULLIF"
    template = "NULLIF(%(expressions)s, '')"
    output_field = TextField()


# -- presence ---------------------------------------------------------------------------------


def seen_since(moment: F) -> Q:
    """Devices (as RolloutDevice rows, through `device`) that sent anything after `moment`.

    last_seen only grows, so "seen after the report" stays true once true. It holds the receive
    time of a device's messages, written at most once per 30 s of them (devices/last_seen.py),
    and `moment` is the receive time of the confirming report (firmware.engine), so the two
    compare on one clock however late the bridge handled them. The report's own message does
    not count: only a later one, which is what a device alive after its update sends within any
    sensible K."""
    return Q(device__last_seen__gt=moment)


def online_since(now: datetime) -> datetime:
    """Online at `now`: seen within the portal's online window (devices.models.online_since,
    on the caller's clock)."""
    return now - timedelta(seconds=settings.DEVICE_ONLINE_WINDOW_SECONDS)
