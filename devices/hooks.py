"""Registry hooks: how other apps react to changes in the device registry.

The registry's services (devices.services, devices.groups) announce what they changed with a
small event; an app that needs to react subscribes a function in its AppConfig.ready():

    hooks.subscribe(hooks.DevicesTransitioned, revoke_when_decommissioned)

Why not Django signals: a signal fires on every ORM save, wherever it comes from, and hides who
reacts to what. These events fire only from the service functions, carry the actor and the
service's own terms (from/to status, members added), and every subscriber is one grep away.

Hooks run inside the service's transaction, after its rows are written: a hook's own writes
commit or roll back with the change, and an exception in a hook undoes the change and reaches
the caller. A hook that talks to the outside world (Celery, MQTT, the channel layer) defers that
with `transaction.on_commit`. Hooks run in the order they were subscribed (so in the order of
INSTALLED_APPS: lower apps first). Subscribing the same function twice changes nothing.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from devices.models import Device, DeviceGroup


@dataclass(frozen=True)
class DevicesRegistered:
    """New devices were registered (one, or a bulk import's batch), in status `registered`."""

    devices: tuple["Device", ...]
    actor: str


@dataclass(frozen=True)
class DeviceUpdated:
    """A device's mutable fields changed (`changed` names them; `previous` holds their old
    values as the timeline records them: a group by its name)."""

    device: "Device"
    changed: tuple[str, ...]
    actor: str
    previous: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    device: "Device"
    from_status: str


@dataclass(frozen=True)
class DevicesTransitioned:
    """Devices moved to `to_status` (one device, or an admin action's batch), each from its own
    status. The devices already carry `to_status`."""

    moves: tuple[Move, ...]
    to_status: str
    actor: str
    reason: str = ""

    @property
    def devices(self) -> list["Device"]:
        return [move.device for move in self.moves]


@dataclass(frozen=True)
class GroupSaved:
    """A group was created (`created`) or changed; `changed` names the fields that changed."""

    group: "DeviceGroup"
    created: bool
    actor: str
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupDeleted:
    """A group is being deleted: fired before its row goes, so hooks can still query by it."""

    group: "DeviceGroup"
    actor: str


@dataclass(frozen=True)
class GroupMembershipChanged:
    """Devices were assigned to (`added`) or taken out of (`removed`) a static group.

    A dynamic group's membership follows its filter and changes without any event."""

    group: "DeviceGroup"
    actor: str
    added: tuple["Device", ...] = field(default=())
    removed: tuple["Device", ...] = field(default=())


Event = (
    DevicesRegistered
    | DeviceUpdated
    | DevicesTransitioned
    | GroupSaved
    | GroupDeleted
    | GroupMembershipChanged
)
E = TypeVar("E")

_subscribers: dict[type, list[Callable[[Any], None]]] = defaultdict(list)


def subscribe(event_type: type[E], hook: Callable[[E], None]) -> None:
    """Call `hook(event)` for every event of `event_type`, inside the service's transaction."""
    if event_type not in Event.__args__:
        raise TypeError(f"{event_type!r} is not a registry event.")
    if hook not in _subscribers[event_type]:  # ready() may run twice; a hook runs once
        _subscribers[event_type].append(hook)


def unsubscribe(event_type: type[E], hook: Callable[[E], None]) -> None:
    if hook in _subscribers[event_type]:
        _subscribers[event_type].remove(hook)


@contextmanager
def subscribed(event_type: type[E], hook: Callable[[E], None]) -> Iterator[None]:
    """Subscribe `hook` for the duration of a block (tests)."""
    subscribe(event_type, hook)
    try:
        yield
    finally:
        unsubscribe(event_type, hook)


def notify(event: Event) -> None:
    """Run the hooks of `event`'s type. Called by the registry's services only."""
    for hook in list(_subscribers[type(event)]):
        hook(event)
