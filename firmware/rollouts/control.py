"""The actions operators and the failure policy both take on a running rollout — pause, resume,
abort, approve a manual gate — each through states.move (or
states.record) with its actor and reason, so the timeline says who did what and why."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from firmware import executions, jobs
from firmware.choices import JobStatus
from firmware.models import Job, JobExecution, JobTarget
from firmware.rollouts import outcomes, states
from firmware.rollouts.choices import DeviceOutcome, Failure, RolloutStatus, WaveStatus
from firmware.rollouts.models import Rollout, RolloutDevice, Wave
from fleetportal.errors import DomainError

SYSTEM = "system:rollouts"  # the actor of what the rollout does by itself


LIVE_WAVES = (WaveStatus.RUNNING, WaveStatus.SOAKING, WaveStatus.AWAITING_APPROVAL)


class GateError(DomainError):
    """A manual gate that cannot be approved now (not waiting, or the rollout not running)."""

    field = "status"
    code = "gate_not_waiting"
    http_status = 409


class SelfApproval(DomainError):
    """The creator approving their own rollout where it requires approval (the start's rule:
    services.SelfApproval is this class)."""

    field = "approved_by"
    code = "self_approval"
    http_status = 403


class RetryResetError(DomainError):
    """Retries that cannot be reset (the rollout over, or the device's wave not begun)."""

    field = "status"
    code = "retries_not_resettable"
    http_status = 409


def pause(rollout: Rollout, *, actor: str, reason: str, now: datetime | None = None) -> Rollout:
    """Nothing more is released; timers still run, so silent devices still end."""
    return states.move(rollout, RolloutStatus.PAUSED, actor=actor, reason=reason, now=now)


def resume(rollout: Rollout, *, actor: str, reason: str, now: datetime | None = None) -> Rollout:
    """Release again. A threshold already crossed in the current wave does not halt it again:
    the operator who resumes has seen those failures (the next wave is judged afresh)."""
    return states.move(
        rollout,
        RolloutStatus.RUNNING,
        actor=actor,
        reason=reason,
        now=now,
        only_from=frozenset({RolloutStatus.PAUSED}),
    )


def abort(
    rollout: Rollout, *, actor: str, reason: str, force: bool, now: datetime | None = None
) -> Rollout:
    """Stop for good: the current wave's queued executions are cancelled (in-flight ones too
    with `force`; without it they finish and the tick records how), devices no wave reached end
    canceled, and every device of the rollout is free for another one."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = states.move(
            rollout, RolloutStatus.ABORTED, actor=actor, reason=reason, now=now, force=force
        )
        for wave in rollout.waves.filter(status__in=LIVE_WAVES).select_related("job"):
            _cancel_wave_job(wave, force=force, actor=actor, reason=reason, now=now)
            outcomes.follow(wave, now, settled=True)
        RolloutDevice.objects.filter(rollout=rollout, outcome=DeviceOutcome.ASSIGNED).update(
            outcome=DeviceOutcome.CANCELED,
            reason=f"Rollout aborted: {reason}"[:500],
            finished_at=now,
        )
        rollout.waves.filter(status=WaveStatus.PENDING).update(status=WaveStatus.CANCELED)
        RolloutDevice.objects.filter(rollout=rollout, active=True).update(active=False)
    return rollout


def _cancel_wave_job(wave: Wave, *, force: bool, actor: str, reason: str, now: datetime) -> None:
    job = wave.job
    if job is None:
        return
    if job.status in jobs.ACTIVE or (force and not job.force_canceled):
        jobs.cancel_job(
            job,
            force=force,
            comment=f"Rollout aborted: {reason}",
            reason_code="ABORTED",
            actor=actor,
            now=now,
        )


def approve_gate(wave: Wave, *, actor: str, now: datetime | None = None) -> Wave:
    """A manual gate (or an automatic one that refused): promote to the next wave. Whoever may
    approve rollouts may approve it, except the creator of a rollout that requires approval —
    the same rule as approving its start."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=wave.rollout_id)
        wave = Wave.objects.select_for_update().get(pk=wave.pk)
        if wave.status != WaveStatus.AWAITING_APPROVAL:
            raise GateError(
                f"Wave {wave.number} is {WaveStatus(wave.status).label.lower()}, not awaiting "
                "approval."
            )
        if rollout.status not in (RolloutStatus.RUNNING, RolloutStatus.PAUSED):
            raise GateError(f"The rollout is {RolloutStatus(rollout.status).label.lower()}.")
        if not rollout.may_be_approved_by(actor):
            raise SelfApproval(
                f"{actor} created rollout {rollout.rollout_id}, which requires approval; "
                "someone else approves its gates."
            )
        wave.approved_by = actor
        wave.save(update_fields=["approved_by"])
        states.record(
            rollout,
            "gate_approved",
            actor=actor,
            reason="Gate approved.",
            now=now,
            wave_number=wave.number,
        )
        promote(rollout, wave, actor=actor, now=now)
    return wave


def promote(rollout: Rollout, wave: Wave, *, actor: str, now: datetime) -> None:
    """The wave passed its gate: the next wave is released by the next tick; after the last
    one the rollout is completed and its devices are free for another rollout."""
    Wave.objects.filter(pk=wave.pk).update(status=WaveStatus.PASSED, promoted_at=now)
    wave.status, wave.promoted_at = WaveStatus.PASSED, now
    states.record(
        rollout,
        "wave_passed",
        actor=actor,
        reason=f"Wave {wave.number} passed.",
        now=now,
        wave_number=wave.number,
    )
    if rollout.waves.filter(status=WaveStatus.PENDING).exists():
        return
    if rollout.status == RolloutStatus.RUNNING:
        states.move(
            rollout, RolloutStatus.COMPLETED, actor=actor, reason="Every wave passed.", now=now
        )
        RolloutDevice.objects.filter(rollout=rollout, active=True).update(active=False)


# Failures a fresh budget can retry (the jobs engine retries FAILED and TIMED_OUT attempts; a
# SUCCEEDED that never confirmed ended FAILED).
RETRYABLE_FAILURES = (Failure.FAILED, Failure.TIMED_OUT, Failure.NOT_CONFIRMED)


def reset_retries(
    entry: RolloutDevice, *, actor: str, reason: str = "", now: datetime | None = None
) -> RolloutDevice:
    """Give one device its whole retry budget again (issue 13: "a budget an operator can reset
    per device"): its attempts so far are forgiven (JobTarget.retry_offset, which the jobs
    engine subtracts). A device that failed for good with a retryable failure, while its wave's
    job still runs, is retried at the next tick. Recorded on the timeline with the actor."""
    now = now or timezone.now()
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().get(pk=entry.rollout_id)
        entry = (
            RolloutDevice.objects.select_for_update(of=("self",))
            .select_related("wave__job", "device")
            .get(pk=entry.pk)
        )
        if rollout.status not in (RolloutStatus.RUNNING, RolloutStatus.PAUSED):
            raise RetryResetError(
                f"Rollout {rollout.rollout_id} is {RolloutStatus(rollout.status).label.lower()}; "
                "only a running or paused rollout retries devices."
            )
        job, latest = _latest_attempt(entry)
        JobTarget.objects.filter(job=job, device_id=entry.device_id).update(
            retry_offset=latest.execution_number - 1
        )
        used, retried = entry.retries_used, _reopen(entry, latest, job.status)
        entry.retries_used = 0
        entry.save(update_fields=["retries_used", "outcome", "failure", "reason", "finished_at"])
        states.record(
            rollout,
            "retries_reset",
            actor=actor,
            reason=reason or f"Retries of {entry.device.device_id} reset.",
            now=now,
            wave_number=entry.wave.number,
            device_id=entry.device.device_id,
            retries_used=used,
            retried=retried,
        )
    return entry


def _latest_attempt(entry: RolloutDevice) -> tuple[Job, JobExecution]:
    """The device's wave job and its latest attempt there, locked."""
    job = entry.wave.job
    latest = (
        JobExecution.objects.select_for_update()
        .filter(job=job, device_id=entry.device_id)
        .order_by("-execution_number")
        .first()
        if job is not None
        else None
    )
    if job is None or latest is None:
        raise RetryResetError(
            f"Wave {entry.wave.number} has not reached this device yet; it used no retries."
        )
    return job, latest


def _reopen(entry: RolloutDevice, latest: JobExecution, job_status: str) -> bool:
    """A final retryable failure becomes in progress again: the engine's next follow-up of its
    last attempt retries it under the fresh budget."""
    if not (
        entry.outcome == DeviceOutcome.FAILED
        and entry.failure in RETRYABLE_FAILURES
        and latest.status in executions.RETRYABLE
        and job_status == JobStatus.IN_PROGRESS
    ):
        return False
    JobExecution.objects.filter(pk=latest.pk).update(followed_up_at=None)
    entry.outcome, entry.failure, entry.reason = DeviceOutcome.IN_PROGRESS, "", ""
    entry.finished_at = None
    return True
