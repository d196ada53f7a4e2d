"""PLACEHOLDER for r-engine's module (the actions operators and the failure policy take); the
lead takes the owner's version at merge. Each only moves the state, as the signature says."""

from datetime import datetime

from firmware.rollouts import states
from firmware.rollouts.choices import RolloutStatus, WaveStatus
from firmware.rollouts.models import Rollout, Wave


def pause(rollout: Rollout, *, actor: str, reason: str, now: datetime | None = None) -> Rollout:
    return states.move(rollout, RolloutStatus.PAUSED, actor=actor, reason=reason, now=now)


def resume(rollout: Rollout, *, actor: str, reason: str, now: datetime | None = None) -> Rollout:
    if rollout.status != RolloutStatus.PAUSED:
        raise states.IllegalTransition(rollout, RolloutStatus.RUNNING)
    return states.move(rollout, RolloutStatus.RUNNING, actor=actor, reason=reason, now=now)


def abort(
    rollout: Rollout, *, actor: str, reason: str, force: bool, now: datetime | None = None
) -> Rollout:
    return states.move(rollout, RolloutStatus.ABORTED, actor=actor, reason=reason, now=now)


def approve_gate(wave: Wave, *, actor: str, now: datetime | None = None) -> Wave:
    wave.status, wave.approved_by = WaveStatus.PASSED, actor
    wave.save(update_fields=["status", "approved_by"])
    return wave
