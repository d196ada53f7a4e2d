"""A rollout's health bounds (a devices.group_filters document) taken apart for the health check:
its leaves with the polarity the `not`s above them give, and, as SQL on Device, why a device
fails them ("reported.battery was 4, bound: gt 10") — so failing devices are named in one
UPDATE, never one query per device.

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
    Func,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Coalesce, Concat

from devices.group_filters import compile_filters
from shadows.models import Shadow

MISSING = "missing"


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
    condition = compile_filters(node)
    label = f"{'' if positive else 'not '}{describe(node)}"
    found.append(Leaf(label, node["field"], condition if positive else ~condition))


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
    """An expression on Device: for a device failing the bounds, the failing leaves with the
    value seen ("reported.battery was 4, bound: gt 10"), joined by "; ". Only the leaves that
    make the document fail are named (a passing `any` branch is not)."""
    return Coalesce(_reason(bounds, True), Value("bounds not met"), output_field=TextField())


def _reason(node: dict, positive: bool) -> Combinable:
    if "not" in node:
        return _reason(node["not"], not positive)
    if "all" in node or "any" in node:
        children = node.get("all") or node.get("any")
        reasons = [_reason(child, positive) for child in children]
        # all (or a negated any) fails when one child fails: name the failing ones. any (or a
        # negated all) fails only when every child fails: name them all, but only then.
        if ("all" in node) == positive:
            return NullIfEmpty(ConcatWords("; ", *reasons))
        condition = compile_filters(node)
        holds = condition if positive else ~condition
        return Case(
            When(holds, then=Value(None)),
            default=ConcatWords(" and ", *reasons),
            output_field=TextField(),
        )
    condition = compile_filters(node)
    holds = condition if positive else ~condition
    bound = f"{'' if positive else 'not '}{describe(node).split(' ', 1)[1]}"
    seen = Coalesce(value_seen(node["field"]), Value(MISSING), output_field=TextField())
    text = Concat(
        Value(f"{node['field']} was "), seen, Value(f", bound: {bound}"), output_field=TextField()
    )
    return Case(When(holds, then=Value(None)), default=text, output_field=TextField())


def value_seen(field: str) -> Combinable:
    """The device's value of a filter field as text (NULL when it has none)."""
    family, _, rest = field.partition(".")
    if family == "reported" and rest:
        reported = _path(F("reported_state"), rest.split("."))
        shadow = Shadow.objects.filter(device=OuterRef("pk"), name="")
        return Subquery(shadow.values(text=Cast(reported, TextField()))[:1])
    if family in ("metadata", "location") and rest:
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

    last_seen only grows, so "seen after the report" stays true once true. It is written at most
    every 30 s per device (devices/last_seen.py), so the report's own message may carry an
    earlier time: only a later message counts, which is what a device alive after its update
    sends within any sensible K."""
    return Q(device__last_seen__gt=moment)


def online_since(now: datetime) -> datetime:
    """Online at `now`: seen within the portal's online window (devices.models.online_since,
    on the caller's clock)."""
    return now - timedelta(seconds=settings.DEVICE_ONLINE_WINDOW_SECONDS)
