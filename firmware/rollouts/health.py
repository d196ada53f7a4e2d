"""PLACEHOLDER for r-health's module (verified success and the promotion comparison): a reported
device counts as updated at once, and updated devices are never worse. The lead takes the
owner's version at merge."""

from dataclasses import dataclass, field
from datetime import datetime

from firmware.rollouts.choices import DeviceOutcome
from firmware.rollouts.models import Rollout, RolloutDevice, Wave


def verify(wave: Wave, now: datetime) -> None:
    RolloutDevice.objects.filter(wave=wave, outcome=DeviceOutcome.REPORTED).update(
        outcome=DeviceOutcome.UPDATED, finished_at=now
    )


@dataclass
class Comparison:
    updated: dict = field(default_factory=dict)
    others: dict = field(default_factory=dict)
    worse: bool = False
    reasons: list[str] = field(default_factory=list)


def compare(rollout: Rollout, now: datetime) -> Comparison:
    return Comparison()
