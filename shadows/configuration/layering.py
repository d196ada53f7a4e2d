"""A device's effective configuration from its layers (pure: no database).

Precedence, highest first:
1. the device's own value of the key;
2. the value set on one of the device's groups: the group with the highest `priority` wins; on
   equal priority the group created last wins (the rule Azure IoT Hub applies to overlapping
   configurations), then the group name decides so the result never depends on query order.

Every effective entry names its source, so an operator can see where a value came from.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Setting:
    value: Any
    version: int


@dataclass(frozen=True)
class GroupLayer:
    """The values one group sets, with what decides between groups."""

    group_id: UUID
    name: str
    priority: int
    created_at: datetime
    values: dict[str, Setting] = field(default_factory=dict)

    def precedence(self) -> tuple:
        # Sorted ascending, the winner first: higher priority, newer, then name.
        return (-self.priority, -self.created_at.timestamp(), self.name)


@dataclass(frozen=True)
class Effective:
    """One key of a device's effective configuration and where its value came from."""

    key: str
    value: Any
    version: int
    source_group_id: UUID | None  # None: the device's own value
    source_name: str  # "device" or the group's name

    @property
    def from_device(self) -> bool:
        return self.source_group_id is None


DEVICE_SOURCE = "device"


def effective(own: dict[str, Setting], groups: list[GroupLayer]) -> dict[str, Effective]:
    """Every key that applies to the device, each with its winning value, sorted by key."""
    result: dict[str, Effective] = {}
    for layer in sorted(groups, key=GroupLayer.precedence, reverse=True):
        # Losers first, so each winner overwrites: the last write is the highest precedence.
        for key, setting in layer.values.items():
            result[key] = Effective(key, setting.value, setting.version, layer.group_id, layer.name)
    for key, setting in own.items():
        result[key] = Effective(key, setting.value, setting.version, None, DEVICE_SOURCE)
    return dict(sorted(result.items()))


def rendered(configuration: dict[str, Effective]) -> dict[str, Any]:
    """The document pushed as the `config` shadow's desired state."""
    return {key: entry.value for key, entry in configuration.items()}
