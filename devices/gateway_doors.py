"""The credential door: what a device's gateway does when the portal issues or revokes one of its
certificates, beyond what the portal always does (record it; put a revoked one in the CRL and
drop the device's session at the portal's Mosquitto).

A gateway registered above devices (fleetportal.gateways) opens its door from its app's ready():

    gateway_doors.open_credential_door("aws", CredentialDoor(issued=..., revoked=...))

A door may also name the certificates of its devices that another CA signed (AWS's, for
devices AWS's own fleet provisioning enrolled): they are recorded and revoked like any other,
but the portal's CRL never lists them.

The door is called inside the transaction that records the change, with the certificates of
devices on that gateway only; like a registry hook it defers anything leaving the process with
`transaction.on_commit`. The default gateway, `mosquitto`, has no door: its devices keep the
portal's behaviour unchanged.
"""

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from django.db.models import Q

if TYPE_CHECKING:
    from devices.models import DeviceCredential

CredentialsCall = Callable[[Sequence["DeviceCredential"]], None]


@dataclass(frozen=True)
class CredentialDoor:
    """A gateway's calls for certificates of its devices: newly issued (active), and revoked;
    and which of its certificates another CA signed (`issued_elsewhere`, a filter on
    DeviceCredential): the portal's CRL leaves those out, as its CA cannot revoke them."""

    issued: CredentialsCall
    revoked: CredentialsCall
    issued_elsewhere: Q | None = None


_DOORS: dict[str, CredentialDoor] = {}


def open_credential_door(gateway: str, door: CredentialDoor) -> None:
    """Route `gateway`'s devices' certificate changes to `door` (again from ready(): replaced)."""
    _DOORS[gateway] = door


def close_credential_door(gateway: str) -> None:
    _DOORS.pop(gateway, None)


def issued_elsewhere() -> Q | None:
    """The certificates recorded in the portal that its CA did not sign, by every open door."""
    filters = [door.issued_elsewhere for door in _DOORS.values() if door.issued_elsewhere]
    return reduce(operator.or_, filters) if filters else None


def announce_issued(credentials: Iterable["DeviceCredential"]) -> None:
    for door, batch in _by_door(credentials):
        door.issued(batch)


def announce_revoked(credentials: Iterable["DeviceCredential"]) -> None:
    for door, batch in _by_door(credentials):
        door.revoked(batch)


def _by_door(
    credentials: Iterable["DeviceCredential"],
) -> list[tuple[CredentialDoor, list["DeviceCredential"]]]:
    if not _DOORS:
        return []
    batches: dict[str, list[DeviceCredential]] = defaultdict(list)
    for credential in credentials:
        device = credential.device
        if device is not None and device.gateway in _DOORS:
            batches[device.gateway].append(credential)
    return [(_DOORS[gateway], batch) for gateway, batch in batches.items()]
