"""The device lifecycle: which status may follow which. Pure data, no Django queries.

registered → provisioning → active ⇄ maintenance, and any non-terminal status → decommissioned.
"""

from devices.choices import DeviceStatus as S

TRANSITIONS: dict[str, frozenset[str]] = {
    S.REGISTERED: frozenset({S.PROVISIONING, S.DECOMMISSIONED}),
    S.PROVISIONING: frozenset({S.ACTIVE, S.DECOMMISSIONED}),
    S.ACTIVE: frozenset({S.MAINTENANCE, S.DECOMMISSIONED}),
    S.MAINTENANCE: frozenset({S.ACTIVE, S.DECOMMISSIONED}),
    S.DECOMMISSIONED: frozenset(),
}

TERMINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def allowed_targets(current: str) -> list[str]:
    """The statuses a device in `current` may move to, in lifecycle order."""
    return [s for s in S.values if s in TRANSITIONS[current]]
