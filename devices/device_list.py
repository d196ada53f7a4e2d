"""The device list's filters and search as one service: the admin's sidebar, "save as a dynamic
group", the CSV export and the bulk jobs all read the same query string through here, so the
rows an operator sees are the rows exported, saved or acted on.

A filter is a query-string parameter with a few values. Each value compiles to a condition on
Device (`condition`) and, where the filter language can say the same, to a filter document node
(`document`; None = it cannot, and saving the list as a group is refused naming the filter).
Apps above devices add filters with `DEVICE_LIST.add_filter` from their AppConfig.ready (drift
from shadows, open alerts and presence from monitoring), and pages that act on the filtered set
with `DEVICE_LIST.add_action` (firmware's "Run a job on these devices"): devices never imports
them.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict
from django.utils.http import urlencode

from devices import credentials
from devices.choices import DeviceStatus
from devices.group_filters import FilterError, validate_filters
from devices.models import Device, DeviceGroup, SearchValues
from fleetportal import gateways

SEARCH = "q"
# The name Django's own foreign-key filter used, so existing links keep working.
GROUP_PARAMETER = "group__id__exact"
# Search terms longer than this match nothing useful and cost trigram work: cut, not refused.
MAX_SEARCH = 200
# A list's query string given as text (an API's target filter): longer is no list's.
MAX_QUERY = 2000
EXPIRY_WINDOWS = (7, 30, 90)
Choices = Callable[[], list[tuple[str, str]]]


class BadListFilter(ValueError):
    """A value a list filter does not know (a hand-edited or stale URL): shown as a message."""


@dataclass(frozen=True)
class ListFilter:
    """One sidebar filter of the device list."""

    parameter: str
    title: str
    choices: Choices
    condition: Callable[[str], Q]
    # The filter-language node for a value; None when the language cannot express it.
    document: Callable[[str], dict | None] = field(default=lambda value: None)
    order: int = 100
    # How a value reads to an operator; None: its label among `choices` (fixed lists only).
    label: Callable[[str], str] | None = None

    def describe(self, value: str) -> str:
        label = self.label(value) if self.label else dict(self.choices()).get(value, value)
        return f"{self.title}: {label}"


@dataclass(frozen=True)
class ListColumn:
    """A column an app adds to the device list: annotate the page's query, render one cell."""

    name: str
    label: str
    annotate: Callable[[QuerySet], QuerySet]
    render: Callable[[Device], Any]
    order: int = 100


def two_way_filter(
    parameter: str,
    title: str,
    matching: tuple[str, str],
    other: tuple[str, str],
    condition: Callable[[], Q | Exists],
    order: int = 100,
) -> ListFilter:
    """A filter with two values, `matching` (value, label) for the devices `condition()` holds
    for and `other` for the rest; not expressible in the filter language."""

    def compiled(value: str) -> Q:
        if value not in (matching[0], other[0]):
            raise BadListFilter(f"Unknown filter value {value[:40]!r}.")
        return Q(condition()) if value == matching[0] else ~Q(condition())

    return ListFilter(parameter, title, lambda: [matching, other], compiled, order=order)


@dataclass(frozen=True)
class ListAction:
    """A page an app offers for every device of the current list, beside the bulk actions:
    shown to users holding `permission`; `url` receives the list's query string (its filters
    and search, urlencoded) and returns where the entry leads."""

    name: str
    label: str
    permission: str
    url: Callable[[str], str]
    order: int = 100
    # Offered only on a filtered or searched list (not on the whole fleet).
    needs_filter: bool = False


class ListExtensions:
    """The device list's filters, columns and actions on the filtered set; a name is registered
    once (a second, different registration raises at start-up, as devices.pages does)."""

    def __init__(self) -> None:
        self.filters: dict[str, ListFilter] = {}
        self.columns: dict[str, ListColumn] = {}
        self.actions: dict[str, ListAction] = {}

    def add_filter(self, list_filter: ListFilter) -> None:
        _claim(self.filters, list_filter.parameter, list_filter)

    def add_column(self, column: ListColumn) -> None:
        _claim(self.columns, column.name, column)

    def add_action(self, action: ListAction) -> None:
        _claim(self.actions, action.name, action)

    def actions_for(self, user, query: str) -> list[tuple[str, str]]:
        """(label, url) of each action on the filtered set the user may take, in order."""
        return [
            (action.label, action.url(query))
            for action in sorted(self.actions.values(), key=lambda a: (a.order, a.name))
            if user.has_perm(action.permission) and (query or not action.needs_filter)
        ]

    def ordered_filters(self) -> list[ListFilter]:
        return sorted(self.filters.values(), key=lambda f: (f.order, f.parameter))

    def ordered_columns(self) -> list[ListColumn]:
        return sorted(self.columns.values(), key=lambda c: (c.order, c.name))

    def annotate(self, queryset: QuerySet) -> QuerySet:
        for column in self.ordered_columns():
            queryset = column.annotate(queryset)
        return queryset


def _claim(registry: dict, name: str, item: Any) -> None:
    if name in registry and registry[name] != item:
        raise ImproperlyConfigured(f"The device list already has a {name!r} extension.")
    registry[name] = item


DEVICE_LIST = ListExtensions()


# -- reading a query string ---------------------------------------------------------------------


def active_filters(params: Mapping[str, str]) -> list[tuple[ListFilter, str]]:
    """The registered filters the parameters set (non-empty), in sidebar order."""
    return [
        (f, params[f.parameter]) for f in DEVICE_LIST.ordered_filters() if params.get(f.parameter)
    ]


def search_term(params: Mapping[str, str]) -> str:
    return str(params.get(SEARCH, "")).replace("\x00", "").strip()[:MAX_SEARCH]


def condition(params: Mapping[str, str]) -> Q:
    """The list's filters and search as one condition on Device; BadListFilter for a value no
    filter offers."""
    combined = Q()
    for list_filter, value in active_filters(params):
        combined &= list_filter.condition(value)
    term = search_term(params)
    if term:
        combined &= search_condition(term)
    return combined


def filtered_devices(params: Mapping[str, str]) -> QuerySet[Device]:
    """The devices the list shows for these parameters (any order)."""
    return Device.objects.alias(search_values=SearchValues()).filter(condition(params))


def search_condition(term: str) -> Q:
    """ID, name or serial number, or a metadata/location value, containing `term` (case
    ignored). Each side has its trigram index (devices.models); PostgreSQL ORs the bitmaps."""
    return (
        Q(device_id__icontains=term)
        | Q(device_name__icontains=term)
        | Q(serial_number__icontains=term)
        | Q(search_values__icontains=term)
    )


def filter_document(params: Mapping[str, str]) -> dict:
    """The list's current filter in the dynamic groups' language, or FilterError naming what
    it cannot express (a search, a filter the language has no field for)."""
    problems, nodes = [], []
    if search_term(params):
        problems.append(
            "A search cannot be saved in a group's filter; use the filters in the sidebar."
        )
    for list_filter, value in active_filters(params):
        try:
            node = list_filter.document(value)
        except BadListFilter as exc:
            problems.append(f"“{list_filter.title}”: {exc}")
            continue
        if node is None:
            problems.append(
                f"The filter “{list_filter.title}” cannot be expressed in a group's filter."
            )
        else:
            nodes.append(node)
    if not nodes and not problems:
        problems.append("Choose at least one filter first: a group of every device is no filter.")
    if problems:
        raise FilterError(problems)
    document = nodes[0] if len(nodes) == 1 else {"all": nodes}
    validate_filters(document)
    return document


def query_params(querydict) -> dict[str, str]:
    """The list parameters worth keeping (filters and search) from a request's GET."""
    return {k: str(v)[:MAX_SEARCH] for k, v in querydict.items() if k in _known() and v}


def _known() -> set[str]:
    return {f.parameter for f in DEVICE_LIST.filters.values()} | {SEARCH}


def parse_query(text: str) -> dict[str, str]:
    """A list's query string given as text (the API's target filter), strictly: a parameter
    the list does not know, or one given twice, is a BadListFilter rather than dropped — a typo
    must not widen the set to the whole fleet. The values are checked when compiled."""
    if len(text) > MAX_QUERY:
        raise BadListFilter(f"At most {MAX_QUERY:,} characters.")
    given = QueryDict(text.lstrip("?"))
    if unknown := sorted(set(given) - _known()):
        names = ", ".join(sorted(_known()))
        raise BadListFilter(f"Unknown parameter {unknown[0][:40]!r}; the list knows {names}.")
    if twice := sorted(key for key, values in given.lists() if len(values) > 1):
        raise BadListFilter(f"{twice[0]!r} is given twice.")
    if any("\x00" in value for value in given.values()):
        raise BadListFilter("A value holds a NUL character.")
    return query_params(given)


def query_string(params: Mapping[str, str]) -> str:
    """The list's parameters as its query string, in the sidebar's order (search last)."""
    ordered = [(f.parameter, value) for f, value in active_filters(params)]
    if params.get(SEARCH):
        ordered.append((SEARCH, params[SEARCH]))
    return urlencode(ordered)


def describe(params: Mapping[str, str]) -> str:
    """The list's filters and search as an operator reads them ("device type: sensor, search:
    “berlin”"); BadListFilter for a value no filter offers."""
    parts = [list_filter.describe(value) for list_filter, value in active_filters(params)]
    if term := search_term(params):
        parts.append(f"search: “{term}”")
    return ", ".join(parts)


# -- devices' own filters -----------------------------------------------------------------------


def _choice(choices: Choices, value: str) -> str:
    if value not in {key for key, _ in choices()}:
        raise BadListFilter(f"Unknown filter value {value[:40]!r}.")
    return value


def _eq(name: str) -> Callable[[str], dict]:
    return lambda value: {"field": name, "op": "eq", "value": value}


def _status_choices() -> list[tuple[str, str]]:
    return [(str(s.value), str(s.label)) for s in DeviceStatus]


def _yes(value: str) -> bool:
    if value not in ("yes", "no"):
        raise BadListFilter(f"Unknown filter value {value[:40]!r}.")
    return value == "yes"


def _online(value: str) -> Q:
    from devices import online

    return online.condition() if _yes(value) else ~online.condition()


def _indexed(name: str) -> Choices:
    def choices() -> list[tuple[str, str]]:
        from devices.admin_filters import distinct_values

        return [(v, v) for v in distinct_values(Device, name)]

    return choices


def _group_choices() -> list[tuple[str, str]]:
    rows = DeviceGroup.objects.order_by("name").values_list("pk", "name")[:50]
    return [(str(pk), name) for pk, name in rows]


def _group(value: str) -> DeviceGroup:
    try:
        return DeviceGroup.objects.get(pk=value)
    except (DeviceGroup.DoesNotExist, ValidationError):
        raise BadListFilter("No such group.") from None


def _group_document(value: str) -> dict:
    group = _group(value)
    # A dynamic group's own filter, so the saved group follows the same rule.
    return group.filters if group.is_dynamic else _eq("group")(group.name)


def _expiring(value: str) -> Q:
    if value not in {str(d) for d in EXPIRY_WINDOWS}:
        raise BadListFilter(f"Unknown filter value {value[:40]!r}.")
    live = credentials.expiring(int(value)).filter(device=OuterRef("pk"))
    return Q(Exists(live))


def _register_own() -> None:
    add = DEVICE_LIST.add_filter
    add(
        ListFilter(
            "status__exact",
            "status",
            _status_choices,
            lambda v: Q(status=_choice(_status_choices, v)),
            lambda v: _eq("status")(_choice(_status_choices, v)),
            order=10,
        )
    )
    add(
        ListFilter(
            "online",
            "connectivity",
            lambda: [("yes", "Online"), ("no", "Offline")],
            _online,
            lambda v: {"field": "online", "op": "eq", "value": _yes(v)},
            order=20,
        )
    )
    # Exact values (typed into a URL by the dashboard), not only the sidebar's first 50.
    for order, (name, title) in enumerate(
        [("device_type", "device type"), ("firmware_version", "firmware version")], start=30
    ):
        add(
            ListFilter(
                name,
                title,
                _indexed(name),
                _field_equals(name),
                _eq(name),
                order=order,
                label=str,
            )
        )
    add(
        ListFilter(
            GROUP_PARAMETER,
            "group",
            _group_choices,
            lambda v: _group(v).membership(),
            _group_document,
            order=40,
            label=lambda v: _group(v).name,
        )
    )
    # Few devices are off the default gateway: device_off_default_gateway_idx serves those.
    add(
        ListFilter(
            "gateway",
            "gateway",
            gateways.choices,
            lambda v: Q(gateway=_choice(gateways.choices, v)),
            lambda v: _eq("gateway")(_choice(gateways.choices, v)),
            order=50,
        )
    )
    add(
        ListFilter(
            "certificate_expires",
            "certificate expires",
            lambda: [(str(d), f"within {d} days") for d in EXPIRY_WINDOWS],
            _expiring,
            order=60,
        )
    )


def _field_equals(name: str) -> Callable[[str], Q]:
    return lambda value: Q(**{name: value})


_register_own()
