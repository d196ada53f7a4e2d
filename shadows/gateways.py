"""The shadows' door to device gateways other than the portal's Mosquitto (fleetportal.gateways).

For a device on the portal's own broker an accepted change is answered on the shadow's MQTT
topics through the outbox (shadows.writes). A gateway that owns its devices' shadows elsewhere
(AWS IoT Core: aws_gateway) registers a `deliver` here; a change the portal accepts for one of
its devices — an operator's or integrator's desired state, the configuration's `config`
shadow, a shadow's deletion — is then handed to it instead, as ShadowChange records, inside the
transaction that stores the change, so the gateway can queue its delivery in that same
transaction (nothing is lost if the commit happens and the gateway is down; nothing is sent if
it rolls back).

What such a gateway reports back comes in through shadows.mirror.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ShadowChange:
    """One accepted change of a shadow of a device on another gateway: the request's state (a
    merge patch of desired and/or reported, None to clear), or the shadow's deletion
    (`deleted`), in the order it was accepted."""

    device_pk: Any
    device_id: str
    shadow_pk: Any
    name: str  # "" for the classic shadow
    state: dict[str, Any] | None
    version: int  # the portal's version after the change (the gateway's answer replaces it)
    at: datetime
    deleted: bool = False  # the shadow was deleted (shadows.services.delete)


Deliver = Callable[[list[ShadowChange]], None]
_doors: dict[str, Deliver] = {}


def register(gateway: str, deliver: Deliver) -> None:
    """Hand the accepted changes of shadows of `gateway`'s devices to `deliver` (called inside
    the writing transaction with every change written together, in order)."""
    _doors[gateway] = deliver


def delivers(gateway: str) -> bool:
    """True when changes of this gateway's devices go through a door, not the MQTT outbox."""
    return gateway in _doors


def deliver(gateway: str, changes: list[ShadowChange]) -> None:
    if changes:
        _doors[gateway](changes)
