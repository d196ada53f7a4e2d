"""The job form's configs: rollout, abort, timeout and retry, and scheduling assembled from the
form's small fields into the REST API's config objects, remembering which field each value came
from, so a refusal from firmware.configs ("criteria_list[1].threshold_percentage: Must be …")
is shown next to the field the operator filled."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS


def _json_number(value: Decimal) -> int | float:
    """A form's decimal as the JSON number an API client would send (2, not 2.0)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _api_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _json_number(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class Placed:
    """Which form field each config value came from, so the service's refusal of a config
    ("criteria_list[1].threshold_percentage: Must be …") lands on the field the operator filled."""

    def __init__(self) -> None:
        self.sources: dict[str, list[tuple[str, str, str]]] = {}

    def config(self, name: str, data: dict[str, Any]) -> "ConfigBuilder":
        return ConfigBuilder(self, name, data)

    def source(self, config: str, path: str, field: str, label: str = "") -> None:
        self.sources.setdefault(config, []).append((path, field, label))

    def field_for(self, config: str, message: str) -> tuple[str, str]:
        """The form field for one of configs.validate's "path: message" messages, and the
        message as shown there."""
        path, separator, text = message.partition(": ")
        known = self.sources.get(config, [])
        if not separator or not known:
            return NON_FIELD_ERRORS, f"{config}: {message}"
        matches = [s for s in known if path == s[0] or path.startswith(s[0] + ".")]
        if not matches:
            return known[0][1], message
        source, field, label = max(matches, key=lambda s: len(s[0]))
        rest = path[len(source) :].lstrip(".")
        shown = f"{rest}: {text}" if rest else text
        return field, f"{label}: {shown}" if label else shown


class ConfigBuilder:
    """One config assembled from form fields; `value` is None when none was filled."""

    def __init__(self, placed: Placed, name: str, data: dict[str, Any]):
        self.placed, self.name, self.data = placed, name, data
        self.value: dict[str, Any] | None = None

    def _root(self) -> dict[str, Any]:
        if self.value is None:
            self.value = {}
        return self.value

    def source(self, path: str, field: str, label: str = "") -> None:
        self.placed.source(self.name, path, field, label)

    def scalar(self, path: str, field: str) -> None:
        """Put the field's value at `path` ("a.b" nests), if it is filled."""
        self.source(path, field)
        value = self.data.get(field)
        if value is None or value == "":
            return
        node = self._root()
        *parents, leaf = path.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = _api_value(value)

    def append(self, path: str, item: dict[str, Any], field: str, label: str = "") -> str:
        """Add an item (its empty values left out) to the list at `path`; returns the item's
        path, `path[index]`. A problem of the whole list is shown on its first item's field."""
        items = self._root().setdefault(path, [])
        if not items:
            self.source(path, field)
        items.append({key: _api_value(value) for key, value in item.items() if value is not None})
        item_path = f"{path}[{len(items) - 1}]"
        self.source(item_path, field, label)
        return item_path
