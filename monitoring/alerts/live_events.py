"""The alerts' live event: "alerts changed" to the fleet summary's group (fleetportal.live), after
the change commits and only while someone watches. The page then reads its alert figures again,
so a tick that raises 100,000 alerts sends one small message, not one per alert."""

from fleetportal import live

# The fleet summary's group (monitoring/summary owns it and its page).
FLEET_SUMMARY = "fleet-summary"


def alerts_changed(*, raised: int = 0, resolved: int = 0, acknowledged: int = 0) -> None:
    """Call inside the transaction that made the change (outside one, it is sent at once)."""
    live.emit(
        FLEET_SUMMARY,
        "alerts",
        {
            "type": "alerts.changed",
            "raised": raised,
            "resolved": resolved,
            "acknowledged": acknowledged,
        },
    )
