"""The rollout tick (Celery beat, firmware.tasks.rollouts_tick): runs each rollout's waves as jobs
of the jobs engine.

Each rollout is stepped in its own transaction with its row taken FOR UPDATE SKIP LOCKED, so
two ticks skip each other's rollouts and a tick killed half-way leaves the rows as they were.
A step, for the rollout's current wave:
  1. a pending wave of a running rollout gets its one Job (targets = the wave's devices, with
     their position and zone, one INSERT … SELECT);
  2. the wave's job is stepped by the jobs engine (timers, start deadline, confirmation,
     retries, completion) — timers run while paused too, so silent devices still end;
  3. device outcomes follow the executions (outcomes.follow), health.verify judges the
     reported ones;
  4. the failure policy (while the wave runs or soaks): crossed → its action at once, in this
     same step, before any release or gate;
  5. a running rollout releases the next targets (max in flight, position order, windows);
  6. every device final → soak; after the soak, the gate (automatic or manual).
After the rollouts, the bytes their downloads served (counted in Redis) are added to each
Rollout.bytes_served (spread.flush_bytes_served).
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from firmware import engine as jobs_engine
from firmware import jobs
from firmware.choices import JobStatus, TargetSelection
from firmware.models import Job
from firmware.rollouts import control, health, live_events, outcomes, spread, states
from firmware.rollouts.choices import (
    DeviceOutcome,
    FailureAction,
    RolloutStatus,
    WaveGate,
    WaveStatus,
)
from firmware.rollouts.models import DEVICE_LOCAL, Rollout, RolloutDevice, Wave
from fleetportal import live

SYSTEM = control.SYSTEM
STEPPED = (RolloutStatus.RUNNING, RolloutStatus.PAUSED)
# Waves whose failures the failure policy judges: still releasing, or soaking (health verdicts).
JUDGED_WAVES = (WaveStatus.RUNNING, WaveStatus.SOAKING)


def tick(now: datetime | None = None) -> dict[str, Any]:
    """One tick over every rollout that has something to do; returns what it did."""
    now = now or timezone.now()
    report: dict[str, Any] = {"started": [], "waves_started": [], "halted": [], "completed": []}
    for rollout in Rollout.objects.filter(status=RolloutStatus.SCHEDULED).filter(
        Q(start_at__isnull=True) | Q(start_at__lte=now)
    ):
        states.move(rollout, RolloutStatus.RUNNING, actor=SYSTEM, reason="Start time.", now=now)
        report["started"].append(rollout.rollout_id)
    # Aborted rollouts are followed while their last wave's devices finish and are verified.
    due = Rollout.objects.filter(
        Q(status__in=STEPPED)
        | Q(status=RolloutStatus.ABORTED, waves__status__in=control.LIVE_WAVES)
    )
    for pk in list(due.values_list("pk", flat=True).distinct()):
        # One "rollout changed" per stepped rollout, sent after its step commits, however many
        # devices and timeline entries the step changed.
        with live.coalesced():
            step(pk, now, report)
    spread.flush_bytes_served()
    return report


def step(rollout_pk: Any, now: datetime, report: dict[str, Any]) -> None:
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update(skip_locked=True).filter(pk=rollout_pk).first()
        if rollout is None:
            return
        wave = current_wave(rollout)
        if wave is None:
            return
        live_events.changed(rollout.pk)  # counts may move in any step: the page re-reads them
        if wave.status == WaveStatus.PENDING:
            if rollout.status == RolloutStatus.RUNNING:
                launch(rollout, wave, now)
                report["waves_started"].append(f"{rollout.rollout_id} wave {wave.number}")
            else:
                return
        jobs_report = jobs_engine.Report()
        job = jobs_engine.lock(wave.job_id) if wave.job_id else None
        if job is not None:
            jobs_engine.step_job(job, now, jobs_report)
        elif wave.job_id is not None and rollout.status == RolloutStatus.ABORTED:
            # The job was cancelled; its in-flight devices still end by their deadlines.
            jobs_engine.settle_canceled(Job.objects.get(pk=wave.job_id), now, jobs_report)
        settled = (
            wave.job_id is None
            or not Job.objects.filter(pk=wave.job_id, status=JobStatus.IN_PROGRESS).exists()
        )
        outcomes.follow(wave, now, settled=settled)
        health.verify(wave, now)
        tally = outcomes.counts(wave)
        if rollout.status == RolloutStatus.ABORTED:
            if not outcomes.unfinished(tally):
                _set(wave, status=WaveStatus.HALTED, finished_at=now)
            return
        running = rollout.status == RolloutStatus.RUNNING
        # Judged while soaking too: a device found unhealthy during the soak (health.verify) is a
        # failure like any other, and the gate must not promote past it.
        if running and wave.status in JUDGED_WAVES and halt_if_crossed(rollout, wave, tally, now):
            report["halted"].append(rollout.rollout_id)
            return
        if running and wave.status == WaveStatus.RUNNING and job is not None:
            while jobs_engine.release(job.pk, now, jobs_report) == jobs_engine.RELEASE_BATCH:
                pass
        passed = gate(rollout, wave, tally, now)
        if passed and rollout.status == RolloutStatus.COMPLETED:
            report["completed"].append(rollout.rollout_id)


def current_wave(rollout: Rollout) -> Wave | None:
    """The first wave that has not passed (nor been canceled)."""
    return (
        rollout.waves.exclude(status__in=(WaveStatus.PASSED, WaveStatus.CANCELED))
        .order_by("number")
        .first()
    )


def _set(wave: Wave, **changes: Any) -> None:
    Wave.objects.filter(pk=wave.pk).update(**changes)
    for name, value in changes.items():
        setattr(wave, name, value)


# --- 1. A wave's job -------------------------------------------------------------------------


def launch(rollout: Rollout, wave: Wave, now: datetime) -> Job:
    """The wave's one Job: the rollout's document and configs, its devices as targets."""
    job_id = f"{rollout.rollout_id[:52]}-wave-{wave.number}"
    if Job.objects.filter(job_id=job_id).exists():
        job_id = f"rollout-{rollout.pk}-wave-{wave.number}"
    job = Job(
        job_id=job_id,
        description=f"Rollout {rollout.rollout_id}, wave {wave.number}"[:2028],
        firmware=rollout.firmware,
        template=rollout.template,
        document_parameters=rollout.document_parameters,
        target_selection=TargetSelection.SNAPSHOT,
        status=JobStatus.IN_PROGRESS,
        rollout_config=rollout.rate_config,
        retry_config=rollout.retry_config,
        timeout_config={"in_progress_timeout_in_minutes": rollout.finish_deadline_minutes},
        max_in_flight=wave.max_in_flight,
        start_deadline_minutes=rollout.start_deadline_minutes,
        window_cron=rollout.window_cron,
        window_duration_minutes=rollout.window_duration_minutes,
        rollout=rollout,
        created_by=SYSTEM,
        created_at=now,
    )
    if rollout.firmware is not None:
        job.document = jobs.firmware_document(rollout.firmware)
    elif rollout.template is not None:
        job.document = jobs.render_template(rollout.template, rollout.document_parameters)
    else:  # firmware.rollouts.validation refuses such a rollout before it is saved
        raise ValueError(f"Rollout {rollout.rollout_id} has neither firmware nor a template.")
    job.save(force_insert=True)
    local = rollout.window_timezone == DEVICE_LOCAL
    devices = RolloutDevice.objects.filter(wave=wave).values_list(
        "device_id", "position", "time_zone"
    )
    select, params = devices.query.sql_with_params()
    if not local:  # one zone for every device: the rollout's
        select = f"SELECT sub.d, sub.p, %s FROM ({select}) AS sub(d, p, z)"  # noqa: S608
        params = (rollout.window_timezone, *params)
    jobs.add_positioned_targets(job, select, list(params))
    _set(wave, job=job, status=WaveStatus.RUNNING, started_at=now)
    states.record(
        rollout,
        "wave_started",
        actor=SYSTEM,
        now=now,
        wave_number=wave.number,
        reason=f"Wave {wave.number} started: job {job.job_id}, {job.target_count} devices.",
    )
    return job


# --- 4. The failure policy -------------------------------------------------------------------


def crossed(rollout: Rollout, tally) -> tuple[int, int] | None:
    """(failures, finished) when the wave's failures reach the threshold, else None."""
    finished = outcomes.finished(tally)
    if finished < max(rollout.failure_min_finished, 1):
        return None
    kinds = set(rollout.failure_kinds)
    failures = sum(
        n
        for (outcome, failure), n in tally.items()
        if outcome == DeviceOutcome.FAILED and failure in kinds
    )
    if rollout.failure_threshold_count is not None and failures >= rollout.failure_threshold_count:
        return failures, finished
    percent = rollout.failure_threshold_percent
    if percent is not None and failures and Decimal(failures * 100) >= percent * finished:
        return failures, finished
    return None


def halt_if_crossed(rollout: Rollout, wave: Wave, tally, now: datetime) -> bool:
    """Act on the threshold at once. A crossing the operator resumed from does not halt the
    same wave again."""
    resumed = rollout.threshold_crossed_at
    if resumed is not None and wave.started_at is not None and resumed >= wave.started_at:
        return False
    hit = crossed(rollout, tally)
    if hit is None:
        return False
    failures, finished = hit
    reason = (
        f"Wave {wave.number}: {failures} of {finished} finished devices failed "
        f"({', '.join(rollout.failure_kinds)}), threshold "
        + (
            f"{rollout.failure_threshold_count} devices"
            if rollout.failure_threshold_count is not None
            else f"{rollout.failure_threshold_percent} %"
        )
        + f"; action {rollout.failure_action}."
    )
    Rollout.objects.filter(pk=rollout.pk).update(threshold_crossed_at=now)
    states.record(
        rollout,
        "threshold_crossed",
        actor=SYSTEM,
        reason=reason,
        now=now,
        wave_number=wave.number,
        failures=failures,
        finished=finished,
    )
    if rollout.failure_action == FailureAction.PAUSE:
        control.pause(rollout, actor=SYSTEM, reason=reason, now=now)
    else:
        force = rollout.failure_action == FailureAction.ABORT_FORCE
        control.abort(rollout, actor=SYSTEM, reason=reason, force=force, now=now)
    # The wall clock, not the tick's: halted_at - (when the threshold was really crossed) is
    # the benchmark's "threshold to halt" delay (bench/rollouts.py).
    Rollout.objects.filter(pk=rollout.pk).update(halted_at=timezone.now())
    return True


# --- 6. Soak and gates -----------------------------------------------------------------------


def gate(rollout: Rollout, wave: Wave, tally, now: datetime) -> bool:
    """Soak once no device is in flight; after the soak and health's verdicts, the gate.
    True when the wave passed."""
    if wave.status == WaveStatus.RUNNING and not outcomes.unfinished(tally, reported=False):
        if RolloutDevice.objects.filter(wave=wave, outcome=DeviceOutcome.ASSIGNED).exists():
            return False  # defensive: unreleased devices are never "finished"
        until = now + timedelta(minutes=wave.soak_minutes)
        _set(wave, status=WaveStatus.SOAKING, finished_at=now, soak_until=until)
        states.record(
            rollout,
            "wave_soaking",
            actor=SYSTEM,
            now=now,
            wave_number=wave.number,
            reason=f"Wave {wave.number}: every device finished; soaking until {until:%H:%M} UTC.",
        )
    if wave.status != WaveStatus.SOAKING or rollout.status != RolloutStatus.RUNNING:
        return False
    if wave.soak_until is None or now < wave.soak_until or outcomes.unfinished(tally):
        return False
    if wave.gate == WaveGate.MANUAL:
        return _await_approval(rollout, wave, now, f"Wave {wave.number}: manual gate.")
    comparison = health.compare(rollout, now)
    if comparison.worse:
        reason = f"Wave {wave.number}: updated devices do worse: " + "; ".join(comparison.reasons)
        _await_approval(rollout, wave, now, reason)
        control.pause(rollout, actor=SYSTEM, reason=reason[:500], now=now)
        return False
    control.promote(rollout, wave, actor=SYSTEM, now=now)
    rollout.refresh_from_db(fields=["status"])
    return True


def _await_approval(rollout: Rollout, wave: Wave, now: datetime, reason: str) -> bool:
    _set(wave, status=WaveStatus.AWAITING_APPROVAL)
    states.record(
        rollout,
        "gate_waiting",
        actor=SYSTEM,
        reason=reason[:500],
        now=now,
        wave_number=wave.number,
    )
    return False
