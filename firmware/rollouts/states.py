"""Where a rollout may go from where it is, and the one way to move it: `move` locks the row,
checks the transition, saves and records a RolloutEvent with the actor and reason."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from firmware.rollouts import live_events
from firmware.rollouts.choices import RolloutStatus as S
from firmware.rollouts.models import Rollout, RolloutEvent

ALLOWED: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.AWAITING_APPROVAL, S.SCHEDULED, S.RUNNING, S.CANCELED}),
    S.AWAITING_APPROVAL: frozenset({S.SCHEDULED, S.RUNNING, S.DRAFT, S.CANCELED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.CANCELED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.ABORTED, S.CANCELED}),
    S.PAUSED: frozenset({S.RUNNING, S.ABORTED, S.CANCELED}),
    S.COMPLETED: frozenset(),
    S.ABORTED: frozenset(),
    S.CANCELED: frozenset(),
}
FINAL = frozenset(status for status, onward in ALLOWED.items() if not onward)


class IllegalTransition(Exception):
    """The rollout's state does not allow the action (resume a completed rollout…)."""

    def __init__(self, rollout: Rollout, target: str):
        self.current, self.target = rollout.status, target
        super().__init__(
            f"Rollout {rollout.rollout_id} is {S(rollout.status).label.lower()}; it cannot "
            f"become {S(target).label.lower()}."
        )


def may_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def move(
    rollout: Rollout,
    target: str,
    *,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
    only_from: frozenset[str] | None = None,
    **details: Any,
) -> Rollout:
    """Move `rollout` to `target` (row locked for the check), recording who, why and when.
    `only_from`: the action's own narrower rule (resume only a paused rollout, although a draft
    may also become running — by starting it)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Rollout.objects.select_for_update().get(pk=rollout.pk)
        allowed = only_from is None or locked.status in only_from
        if not allowed or not may_move(locked.status, target):
            raise IllegalTransition(locked, target)
        previous = locked.status
        locked.status, locked.status_reason = target, reason
        if target == S.RUNNING and locked.started_at is None:
            locked.started_at = now
        if target in FINAL:
            locked.finished_at = now
        locked.save()
        record(locked, "status", actor=actor, reason=reason, now=now, frm=previous, **details)
    return locked


def record(
    rollout: Rollout,
    kind: str,
    *,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
    frm: str = "",
    wave_number: int | None = None,
    **details: Any,
) -> RolloutEvent:
    """One entry of the rollout's timeline (a gate reached, an approval, a threshold crossed…).
    Whoever made it, a page watching the rollout is told (after the commit)."""
    live_events.changed(rollout.pk)
    return RolloutEvent.objects.create(
        rollout=rollout,
        at=now or timezone.now(),
        actor=actor,
        kind=kind,
        from_status=frm,
        to_status=rollout.status if kind == "status" else "",
        wave_number=wave_number,
        reason=reason[:500],
        details=details,
    )
