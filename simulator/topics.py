"""The device side's topics (docs/device-protocol.md §2), as firmware spells them.

The simulator is device code: it imports nothing of the portal, so it keeps its own copy of the
topic names, exactly as a device maker's firmware would.
"""

# --- claim broker (§4) -------------------------------------------------------------------------

CREATE_FROM_CSR = "$aws/certificates/create-from-csr/json"
CREATE_KEYS = "$aws/certificates/create/json"


def provision(template: str) -> str:
    return f"$aws/provisioning-templates/{template}/provision/json"


# --- device broker ---------------------------------------------------------------------------


def shadow(device_id: str, name: str = "") -> str:
    """The prefix of the classic shadow (name "") or of a named one."""
    base = f"$aws/things/{device_id}/shadow"
    return f"{base}/name/{name}" if name else base


def jobs(device_id: str) -> str:
    return f"$aws/things/{device_id}/jobs"


def presence(device_id: str) -> str:
    return f"devices/{device_id}/presence"


def telemetry(device_id: str) -> str:
    return f"devices/{device_id}/telemetry"


def certificates(device_id: str) -> str:
    """The prefix of the rotation topics: …/rotate, …/confirm and their replies (§5)."""
    return f"devices/{device_id}/certificates"
