"""The credential door: what a device's gateway does when the portal issues or revokes one of its
certificates, beyond what the portal always does (record it; put a revoked one in the CRL and
drop the device's session at the portal's Mosquitto).

A gateway registered above devices (fleetportal.gateways) opens its door from its app's ready():

    gateway_doors.open_credential_door("aws", CredentialDoor(issued=..., revoked=...))

The door is called inside the transaction that records the change, with the certificates of
devices on that gateway only; like a registry hook it defers anything leaving the process with
`transaction.on_commit`. The default gateway, `mosquitto`, has no door: its devices keep the
portal's behaviour unchanged.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devices.models import DeviceCredential

CredentialsCall = Callable[[Sequence["DeviceCredential"]], None]


@dataclass(frozen=True)
class CredentialDoor:
    """A gateway's calls for certificates of its devices: newly issued (active), and revoked."""

    issued: CredentialsCall
    revoked: CredentialsCall


_DOORS: dict[str, CredentialDoor] = {}


def open_credential_door(gateway: str, door: CredentialDoor) -> None:
    """Route `gateway`'s devices' certificate changes to `door` (again from ready(): replaced)."""
    _DOORS[gateway] = door


def close_credential_door(gateway: str) -> None:
    _DOORS.pop(gateway, None)


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
