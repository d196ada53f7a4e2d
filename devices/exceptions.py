"""Domain errors raised by the device services; mapped to HTTP in fleetportal/api/exceptions.py."""

from fleetportal.errors import DomainError


class DeviceError(DomainError):
    """Base class of the registry's refusals."""


class IllegalTransition(DeviceError):
    field = "status"
    code = "illegal_transition"

    def __init__(self, current: str, target: str, allowed: list[str]):
        allowed_text = ", ".join(allowed) if allowed else "none (terminal status)"
        super().__init__(
            f"A device cannot move from {current} to {target}; allowed from {current}: "
            f"{allowed_text}."
        )
        self.current = current
        self.target = target


class StatusConflict(DeviceError):
    field = "from_status"
    code = "status_conflict"
    http_status = 409

    def __init__(self, expected: str, current: str):
        super().__init__(f"The device is {current}, not {expected}; reload and try again.")
        self.expected = expected
        self.current = current


class DeviceDecommissioned(DeviceError):
    code = "decommissioned"

    def __init__(self, device_id: str):
        super().__init__(f"Device {device_id} is decommissioned and can no longer be changed.")


class DeviceIdTaken(DeviceError):
    field = "device_id"
    code = "unique"

    def __init__(self, device_id: str):
        super().__init__(
            f"A device with device_id {device_id!r} exists or existed; device IDs are never reused."
        )
