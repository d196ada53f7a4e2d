"""Device gateways: the way the portal reaches a device and hears from it.

A device belongs to one gateway (`Device.gateway`): `mosquitto`, the portal's own broker and
bridge (the default, always present), or one an app above registers — `aws` (aws_gateway/, AWS
IoT Core). Everything above the gateway (the registry, lifecycle, groups, configuration, jobs
and rollouts, health, the console) works the same whichever gateway a device is on; the code
that talks to devices asks the device's gateway, so adding one does not touch those apps.

A gateway is registered once, at start-up, from its app's `ready()`; a second registration under
a name that is taken is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

MOSQUITTO = "mosquitto"


@dataclass(frozen=True)
class Gateway:
    """A registered gateway: its name (stored on devices) and the label operators see."""

    name: str
    label: str


_GATEWAYS: dict[str, Gateway] = {MOSQUITTO: Gateway(MOSQUITTO, "Mosquitto (this portal)")}


class GatewayTaken(RuntimeError):
    pass


def register(gateway: Gateway) -> Gateway:
    if gateway.name in _GATEWAYS:
        raise GatewayTaken(f"A gateway named {gateway.name!r} is already registered.")
    _GATEWAYS[gateway.name] = gateway
    return gateway


def get(name: str) -> Gateway:
    """The gateway of that name; KeyError names it if none is registered."""
    try:
        return _GATEWAYS[name]
    except KeyError:
        raise KeyError(f"No gateway named {name!r}.") from None


def of(device: object) -> str:
    """The name of the gateway `device` is on (`Device.gateway`; mosquitto when unset)."""
    return getattr(device, "gateway", "") or MOSQUITTO


def choices() -> list[tuple[str, str]]:
    """(name, label) of every registered gateway, the default first."""
    return [(g.name, g.label) for g in _GATEWAYS.values()]
