"""The rollout page's live event: a small "rollout changed" after the change commits, to the
rollout's group (fleetportal.live; sent only while someone watches the page). The page then
fetches its parts again, so however many devices report, the browser gets at most one message
per rollout and tick — never one per device."""

from fleetportal import live


def group(rollout_pk: int) -> str:
    return f"rollout.{rollout_pk}"


def changed(rollout_pk: int) -> None:
    """Call inside the transaction that changed the rollout (sent after it commits)."""
    live.emit(group(rollout_pk), "rollout", {"type": "rollout.changed"})
