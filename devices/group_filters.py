"""The filter language of dynamic device groups: JSON in, one SQL condition out.

A dynamic group's `filters` is one *node*. A node is a condition on one field (a leaf) or a
combination of nodes:

    {"field": <field>, "op": <operator>, "value": <value>}     a leaf
    {"all": [<node>, ...]}                                       every node matches (AND)
    {"any": [<node>, ...]}                                       at least one matches (OR)
    {"not": <node>}                                              the node does not match

An empty document ({}) is not a filter: the group is static and its members are assigned.

Fields
    device_type, status, manufacturer, model      text columns of the device
    gateway                                        the device's gateway: mosquitto, aws
                                                   (fleetportal/gateways.py)
    firmware_version, hardware_version             text, with version-aware lt/lte/gt/gte
    group                                          the name of a *static* group (its members)
    online                                         true/false: devices.online decides
                                                   (monitoring: presence per connection)
    last_seen                                      a time: ISO 8601 ("2025-01-31T12:00:00Z";
                                                   without an offset, the portal's time zone)
                                                   or relative to now: "-30s", "-15m", "-1h",
                                                   "-7d", "-2w"
    metadata.<key>[.<key>...]                      a value in the device's metadata
    location.<key>[.<key>...]                      a value in the device's location
    reported.<key>[.<key>...]                      a value the device reported in its classic
                                                   shadow (registered by the shadows app)

Operators
    eq, ne      equal / not equal. `ne` is exactly `not eq`: a device without the key (or
                without a shadow) is "not equal".
    in          equal to one of a list of 1 to 100 values
    lt, lte, gt, gte
                comparisons. On firmware_version/hardware_version they compare dotted numeric
                versions (below); on last_seen times; on JSON values numbers numerically and
                strings as strings — a value of another JSON type never matches.
    exists      value true (the default) or false: the field is set — a non-empty text, a
                last_seen, a group, or the key present in the JSON document
    prefix      text (or a JSON string) starting with the value

    Field                         eq/ne  in  lt..gte  exists  prefix
    device_type, manufacturer,     yes   yes    -      yes     yes
      model
    status, gateway                yes   yes    -       -       -
    firmware/hardware_version      yes   yes  version   yes     yes
    group                          yes   yes    -      yes      -
    online                         yes    -     -       -       -
    last_seen                       -     -   time     yes      -
    metadata./location./reported.  yes   yes  number   yes     yes
                                              or text

Versions
    eq/ne/in/prefix compare the stored text exactly (served by the column's index);
    lt/lte/gt/gte compare versions: "1.10.0" > "1.9.3". The filter's value must be a dotted
    numeric version ("2", "1.10.0", up to 9 digits a part); a stored version that is not one
    ("v1.2", "1.2-beta", "") never matches a comparison. Trailing zero parts do not count:
    "2.0" and "2.0.0" are the same version for lt/lte/gt/gte, so {"op": "gte", "value": "2.0"}
    matches "2.0.0" and {"op": "lt", "value": "2.0.0"} does not match "2.0".

Examples
    Sensors in Berlin on firmware older than 1.10:
        {"all": [{"field": "device_type", "op": "eq", "value": "sensor"},
                 {"field": "metadata.site", "op": "eq", "value": "berlin"},
                 {"field": "firmware_version", "op": "lt", "value": "1.10.0"}]}
    Low battery, or not heard from for a day:
        {"any": [{"field": "reported.battery", "op": "lt", "value": 20},
                 {"field": "last_seen", "op": "lt", "value": "-1d"}]}
    Active devices outside the lab groups that are offline:
        {"all": [{"field": "status", "op": "eq", "value": "active"},
                 {"not": {"field": "group", "op": "in", "value": ["lab-1", "lab-2"]}},
                 {"field": "online", "op": "eq", "value": false}]}

Every condition compiles to SQL (one WHERE clause, no filtering in Python). Errors name the
problem and where it is: "filters.all[2].op: unknown operator 'like'".
"""

import datetime
import re
from collections.abc import Callable
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db.models import (
    BooleanField,
    Exists,
    F,
    Func,
    IntegerField,
    JSONField,
    Q,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.db.models.lookups import (
    GreaterThan,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.choices import DeviceStatus
from fleetportal import gateways, timestamps, versions

MAX_DEPTH = 10
MAX_CONDITIONS = 100
MAX_IN_VALUES = 100
MAX_KEY_DEPTH = 8
MAX_TEXT = 255

COMBINATORS = ("all", "any", "not")
OPERATORS = ("eq", "ne", "in", "lt", "lte", "gt", "gte", "exists", "prefix")
COMPARISONS = {
    "lt": LessThan,
    "lte": LessThanOrEqual,
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
}

TEXT_FIELDS = ("device_type", "manufacturer", "model")
VERSION_FIELDS = ("firmware_version", "hardware_version")
JSON_COLUMNS = ("metadata", "location")

# What each plain field accepts; JSON families accept JSON_OPS.
FIELD_OPS = {
    **{name: {"eq", "ne", "in", "exists", "prefix"} for name in TEXT_FIELDS},
    **{name: set(OPERATORS) for name in VERSION_FIELDS},
    "status": {"eq", "ne", "in"},
    "gateway": {"eq", "ne", "in"},
    "group": {"eq", "ne", "in", "exists"},
    "online": {"eq", "ne"},
    "last_seen": {"lt", "lte", "gt", "gte", "exists"},
}
JSON_OPS = set(OPERATORS)

# Versions and their order: fleetportal.versions (the same rule in Python and SQL).
VERSION_PATTERN = versions.SQL_PATTERN
_KEY = re.compile(r"[^.\s]{1,64}")
_RELATIVE = re.compile(r"-(\d{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# resolver(keys, op, value) -> a condition on Device that is never NULL (so `not` is exact).
FieldResolver = Callable[[list[str], str, Any], Q | Exists]
_FAMILIES: dict[str, FieldResolver] = {}


def register_field_family(prefix: str, resolver: FieldResolver) -> None:
    """Adds `<prefix>.<key>...` fields, compiled by `resolver(keys, op, value)`.

    The resolver receives a validated key path, an operator among eq/in/lt/lte/gt/gte/exists/
    prefix (`ne` is compiled as `not eq`) and a value checked by `check_json_value`; it returns
    a two-valued condition on Device, typically Exists(...) over the app's table built with
    `json_condition`. Apps call this from AppConfig.ready (devices must not import them).
    """
    _FAMILIES[prefix] = resolver


class FilterError(ValidationError):
    """Bad filter documents: `messages` lists every problem with its path."""


# -- validation -------------------------------------------------------------------------------


def validate_filters(document: Any, *, check_groups: bool = True) -> None:
    """Raises FilterError naming every problem; {} (a static group) is valid.

    check_groups looks up the static groups a filter names (one query); compiling skips it.
    """
    if document in (None, {}):
        return
    problems: list[str] = []
    groups: list[tuple[str, str]] = []
    counter = [0]
    _check_node(document, "filters", 0, problems, groups, counter)
    if counter[0] > MAX_CONDITIONS:
        problems.append(f"filters: at most {MAX_CONDITIONS} conditions, found {counter[0]}")
    if check_groups and groups and not problems:
        problems.extend(_check_groups(groups))
    if problems:
        raise FilterError(problems)


def _check_node(node, path, depth, problems, groups, counter) -> None:
    if not isinstance(node, dict):
        problems.append(f"{path}: a condition must be an object, not {_type(node)}")
        return
    if depth >= MAX_DEPTH:
        problems.append(f"{path}: nested deeper than {MAX_DEPTH} levels")
        return
    combinators = [key for key in COMBINATORS if key in node]
    if combinators:
        if len(node) != 1:
            extra = sorted(set(node) - {combinators[0]})
            problems.append(
                f"{path}: a '{combinators[0]}' condition has no other keys, found {extra}"
            )
            return
        key = combinators[0]
        child = node[key]
        if key == "not":
            _check_node(child, f"{path}.not", depth + 1, problems, groups, counter)
            return
        if not isinstance(child, list) or not child:
            problems.append(f"{path}.{key}: must be a non-empty list of conditions")
            return
        for index, item in enumerate(child):
            _check_node(item, f"{path}.{key}[{index}]", depth + 1, problems, groups, counter)
        return
    counter[0] += 1
    unknown = sorted(set(node) - {"field", "op", "value"})
    if unknown:
        problems.append(
            f"{path}: unknown key(s) {', '.join(repr(k) for k in unknown)}; a condition is "
            "{'field', 'op', 'value'} or one of 'all', 'any', 'not'"
        )
        return
    if "field" not in node or "op" not in node:
        missing = [k for k in ("field", "op") if k not in node]
        problems.append(f"{path}: missing {' and '.join(repr(k) for k in missing)}")
        return
    problem = _check_leaf(node, path, groups)
    if problem:
        problems.append(problem)


def _check_leaf(node: dict, path: str, groups: list) -> str | None:
    field, op = node["field"], node["op"]
    if not isinstance(field, str):
        return f"{path}.field: must be a string, not {_type(field)}"
    if not isinstance(op, str) or op not in OPERATORS:
        return f"{path}.op: unknown operator {op!r}; one of {', '.join(OPERATORS)}"
    family, keys = _split_field(field)
    if family is None and field not in FIELD_OPS:
        return f"{path}.field: unknown field {field!r}"
    if family is not None:
        if not keys or len(keys) > MAX_KEY_DEPTH or not all(_KEY.fullmatch(k) for k in keys):
            return (
                f"{path}.field: {field!r} needs 1 to {MAX_KEY_DEPTH} keys after '{family}.', "
                "each 1 to 64 characters without dots or spaces"
            )
        if any(k.isdigit() for k in keys):
            return f"{path}.field: {field!r}: numeric keys (array positions) are not supported"
        allowed = JSON_OPS
    else:
        allowed = FIELD_OPS[field]
    if op not in allowed:
        return (
            f"{path}.op: operator {op!r} does not apply to field {field!r}; "
            f"use one of {', '.join(o for o in OPERATORS if o in allowed)}"
        )
    if op == "exists":
        if "value" in node and not isinstance(node["value"], bool):
            return f"{path}.value: 'exists' takes true or false, not {_type(node['value'])}"
        return None
    if "value" not in node:
        return f"{path}: missing 'value'"
    value = node["value"]
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
            return f"{path}.value: 'in' takes a list of 1 to {MAX_IN_VALUES} values"
        for index, item in enumerate(value):
            problem = _check_value(family, field, "eq", item, f"{path}.value[{index}]", groups)
            if problem:
                return problem
        return None
    return _check_value(family, field, op, value, f"{path}.value", groups)


def _check_value(family, field, op, value, path, groups) -> str | None:
    if family is not None:
        return check_json_value(op, value, path)
    if field == "online":
        if not isinstance(value, bool):
            return f"{path}: 'online' takes true or false, not {_type(value)}"
        return None
    if field == "last_seen":
        return None if _parse_time(value) else _bad_time(value, path)
    if not isinstance(value, str):
        return f"{path}: {field!r} takes a string, not {_type(value)}"
    if len(value) > MAX_TEXT:
        return f"{path}: longer than {MAX_TEXT} characters"
    if field == "status" and value not in DeviceStatus.values:
        return f"{path}: unknown status {value!r}; one of {', '.join(DeviceStatus.values)}"
    if field == "gateway" and value not in _gateway_names():
        return f"{path}: unknown gateway {value!r}; one of {', '.join(_gateway_names())}"
    if field in VERSION_FIELDS and op in COMPARISONS and not versions.is_version(value):
        return f"{path}: {value!r} is not a version; compare with dotted numbers such as '1.10.0'"
    if field == "group":
        groups.append((value, path))
    return None


def _gateway_names() -> list[str]:
    return [name for name, _ in gateways.choices()]


def check_json_value(op: str, value: Any, path: str) -> str | None:
    """The value rules for JSON fields (metadata., location., reported.)."""
    if op in COMPARISONS:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return f"{path}: {op!r} compares a number or a string, not {_type(value)}"
    elif op == "prefix":
        if not isinstance(value, str):
            return f"{path}: 'prefix' takes a string, not {_type(value)}"
    elif isinstance(value, dict | list):
        return f"{path}: compare with a string, number, boolean or null, not {_type(value)}"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"{path}: longer than {MAX_TEXT} characters"
    return None


def _check_groups(groups: list[tuple[str, str]]) -> list[str]:
    from devices.models import DeviceGroup

    known = dict(
        DeviceGroup.objects.filter(name__in={name for name, _ in groups}).values_list(
            "name", "filters"
        )
    )
    problems = []
    for name, path in groups:
        if name not in known:
            problems.append(f"{path}: no group is named {name!r}")
        elif known[name]:
            problems.append(f"{path}: group {name!r} is dynamic; a filter names static groups")
    return problems


def _split_field(field: str) -> tuple[str | None, list[str]]:
    prefix, dot, rest = field.partition(".")
    if dot and (prefix in JSON_COLUMNS or prefix in _FAMILIES):
        return prefix, rest.split(".")
    return None, []


def _parse_time(value) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = relative.groups()
        return timestamps.ago(timezone.now(), **{_UNITS[unit]: int(amount)})
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    if parsed is not None and not timestamps.offset_in_range(parsed):
        return None  # PostgreSQL would refuse it when the filter runs
    return parsed


def _bad_time(value, path: str) -> str:
    return (
        f"{path}: {value!r} is not a time; use ISO 8601 ('2025-01-31T12:00:00Z', an offset "
        "within ±15:59) or a relative time ('-15m', '-1h', '-7d') after year 1"
    )


def _type(value) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# -- compilation ------------------------------------------------------------------------------


def compile_filters(document: dict) -> Q:
    """The document as one condition on Device (validated first; raises FilterError)."""
    validate_filters(document, check_groups=False)
    if not document:
        return Q()
    return _compile(document)


def _compile(node: dict) -> Q:
    if "all" in node:
        return _combine(node["all"], Q.AND)
    if "any" in node:
        return _combine(node["any"], Q.OR)
    if "not" in node:
        return ~_compile(node["not"])
    return _leaf(node["field"], node["op"], node.get("value", True))


def _combine(nodes: list, connector: str) -> Q:
    combined = Q(_connector=connector)
    for node in nodes:
        combined.add(_compile(node), connector)
    return combined


def _leaf(field: str, op: str, value) -> Q:
    """Every leaf is two-valued (true or false, never NULL), so `not` is its exact complement."""
    if op == "ne":
        return ~_leaf(field, "eq", value)
    if op == "exists" and not value:
        return ~_leaf(field, "exists", True)
    if op == "in" and field not in ("status", "group") and field in FIELD_OPS:
        return Q(**{f"{field}__in": value})
    family, keys = _split_field(field)
    if family in JSON_COLUMNS:
        condition = json_condition(family, keys, op, value)
        # location may be NULL: then every key is absent, not unknown.
        return Q(location__isnull=False) & condition if family == "location" else condition
    if family is not None:
        return Q(_FAMILIES[family](keys, op, value))
    if field == "status":
        return Q(status__in=value if op == "in" else [value])
    if field == "group":
        return _group_condition(op, value)
    if field == "online":
        from devices import online

        # Two-valued by devices.online's contract, so the negation is exact.
        return online.condition() if value else ~online.condition()
    if field == "last_seen":
        if op == "exists":
            return Q(last_seen__isnull=not value)
        return Q(**{f"last_seen__{op}": _parse_time(value)})
    if op == "exists":
        return ~Q(**{field: ""}) if value else Q(**{field: ""})
    if op == "prefix":
        return Q(**{f"{field}__startswith": value})
    if op in COMPARISONS:
        return _version_condition(field, op, value)
    return Q(**{field: value})


def _group_condition(op: str, value) -> Q:
    from devices.models import DeviceGroup

    if op == "exists":
        return Q(group__isnull=not value)
    names = value if op == "in" else [value]
    static = DeviceGroup.objects.filter(name__in=names, filters={}).values("pk")
    return Q(group__in=static)


class VersionArray(Func):
    """A dotted numeric version as int[] without trailing zero parts; NULL if not a version."""

    template = (
        f"(CASE WHEN %(expressions)s ~ '{VERSION_PATTERN}' THEN "
        "string_to_array(regexp_replace(%(expressions)s, '(\\.0+)+$', ''), '.')::int[] END)"
    )
    output_field = ArrayField(IntegerField())

    def as_sql(self, compiler, connection, **extra_context):
        # The template names the expression twice, so its parameters (a Value's) go twice.
        sql, params = super().as_sql(compiler, connection, **extra_context)
        return sql, (*params, *params)


def _version_condition(field: str, op: str, value: str) -> Q:
    literal = "{" + ",".join(str(p) for p in versions.version_key(value)) + "}"
    compared = COMPARISONS[op](
        VersionArray(F(field)), Cast(Value(literal), ArrayField(IntegerField()))
    )
    # The regex guard makes a malformed stored version false rather than NULL.
    return Q(**{f"{field}__regex": VERSION_PATTERN}) & Q(compared)


def json_condition(column: str, keys: list[str], op: str, value) -> Q:
    """A two-valued condition on the JSON value at `keys` inside `column` (jsonb).

    eq/in use containment (@>, served by a GIN index on the column); exists of a top-level key
    uses `?` (also GIN); comparisons and prefix first check the JSON type, so numbers compare
    numerically and strings as strings (jsonb ordering), and a value of another type or a
    missing key is false instead of an error or NULL.
    """
    if op == "in":
        condition = Q(_connector=Q.OR)
        for item in value:
            condition.add(json_condition(column, keys, "eq", item), Q.OR)
        return condition
    if op == "eq":
        return Q(**{f"{column}__contains": _nest(keys, value)})
    path = _key_transform(column, keys)
    if op == "exists":
        # A top-level key: `?`, served by the column's GIN index.
        top = Q(**{f"{column}__has_key": keys[0]})
        present = top if len(keys) == 1 else Q(IsNull(path, False))
        return present if value else ~present
    typed = Q(JsonTypeIs(path, kind="string" if isinstance(value, str) else "number"))
    if op == "prefix":
        text = KeyTextTransform(keys[-1], _key_transform(column, keys[:-1]) if keys[1:] else column)
        return typed & Q(StartsWith(text, value))
    return typed & Q(COMPARISONS[op](path, Value(value, output_field=JSONField())))


class JsonTypeIs(Func):
    """jsonb_typeof(x) = kind, false (not NULL) when x is missing."""

    template = "COALESCE(jsonb_typeof(%(expressions)s) = '%(kind)s', false)"
    output_field = BooleanField()

    def __init__(self, expression, *, kind: str):
        if kind not in ("string", "number"):
            raise ValueError(kind)
        super().__init__(expression, kind=kind)


def _key_transform(column: str, keys: list[str]):
    expression = F(column)
    for key in keys:
        expression = KeyTransform(key, expression)
    return expression


def _nest(keys: list[str], value) -> dict:
    for key in reversed(keys):
        value = {key: value}
    return value
