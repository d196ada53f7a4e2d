"""The jobs engine: one tick, run by Celery beat every JOBS_TICK_SECONDS (firmware/tasks.py).

For each active job, in its own transaction with the job row locked (FOR UPDATE SKIP LOCKED, so
a second tick running at the same time skips the job instead of doing its work twice):

  start (SCHEDULED -> IN_PROGRESS at start_time), end (end_time's end_behavior), follow
  continuous jobs' groups (joiners become targets, leavers' executions REMOVED), time out
  (in-progress and step deadlines -> TIMED_OUT), follow up finished executions (confirm a
  firmware SUCCEEDED, retry FAILED / TIMED_OUT with execution_number + 1), abort (criteria
  crossed -> the job is cancelled: QUEUED executions CANCELED, IN_PROGRESS ones keep going),
  release targets into QUEUED executions at the rollout rate inside the maintenance windows,
  and complete a snapshot job whose executions are all final.

Every execution change and its notify / notify-next outbox rows commit together, so a worker
killed mid-tick (kill -9) loses nothing and sends nothing twice: the rolled-back part is simply
done again by the next tick. That is also why the tick needs no resumable JobKind: its state is
in the rows, and beat runs it again a few seconds later.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device
from firmware import configs, delegation, executions, jobs, notifications, rates
from firmware.choices import ExecutionStatus, JobStatus, TargetSelection
from firmware.models import Job, JobExecution, JobTarget
from firmware.protocol import firmware_runs
from firmware.release import release_targets
from firmware.rollouts import windows
from fleetportal import versions

SYSTEM = "system"  # the actor of what the engine does by itself

RELEASE_BATCH = 5000  # targets released per transaction
FOLLOW_UP_BATCH = 5000
FAILURES = {  # abort criteria's failure types
    "FAILED": {ExecutionStatus.FAILED},
    "REJECTED": {ExecutionStatus.REJECTED},
    "TIMED_OUT": {ExecutionStatus.TIMED_OUT},
    "ALL": {ExecutionStatus.FAILED, ExecutionStatus.REJECTED, ExecutionStatus.TIMED_OUT},
}
FINAL = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)


@dataclass
class Report:
    """What one tick did (logged by the task; read by tests and the benchmark)."""

    started: int = 0
    released: int = 0
    timed_out: int = 0
    not_started: int = 0
    retried: int = 0
    confirmed: int = 0
    unconfirmed: int = 0
    removed: int = 0
    aborted: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)


def tick(now: datetime | None = None) -> Report:
    now = now or timezone.now()
    report = Report()
    report.started = start_scheduled(now)
    # A rollout wave's job is stepped by the rollout tick (firmware/rollouts/engine.py), which
    # releases only while its rollout runs.
    active = Job.objects.filter(status=JobStatus.IN_PROGRESS, wave__isnull=True).values_list(
        "pk", flat=True
    )
    for job_pk in list(active):
        step(job_pk, now, report)
        while release(job_pk, now, report) == RELEASE_BATCH:
            pass
    return report


def start_scheduled(now: datetime) -> int:
    """SCHEDULED jobs whose start_time has come move to IN_PROGRESS (a conditional UPDATE)."""
    due = [
        job.pk
        for job in Job.objects.filter(status=JobStatus.SCHEDULED).only("scheduling_config")
        if (configs.parse_time(job.scheduling_config.get("start_time")) or now) <= now
    ]
    return Job.objects.filter(pk__in=due, status=JobStatus.SCHEDULED).update(
        status=JobStatus.IN_PROGRESS, updated_at=now
    )


def lock(job_pk: Any) -> Job | None:
    return (
        Job.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("firmware")
        .filter(pk=job_pk, status=JobStatus.IN_PROGRESS)
        .first()
    )


def step(job_pk: Any, now: datetime, report: Report) -> None:
    """Everything but the release, for one job, in one transaction."""
    with transaction.atomic():
        job = lock(job_pk)
        if job is not None:
            step_job(job, now, report)


def step_job(job: Job, now: datetime, report: Report) -> None:
    """One locked job's step (the rollout tick calls it for its wave's job, in its own
    transaction, before deciding whether to release)."""
    if end_if_due(job, now, report):
        return
    if job.target_selection == TargetSelection.CONTINUOUS:
        follow_groups(job, now, report)
    time_out(job, now, report)
    cancel_not_started(job, now, report)
    follow_up(job, now, report)
    if abort_if_crossed(job, report):
        return
    complete_if_done(job, now, report)


# --- Schedule --------------------------------------------------------------------------------


def end_if_due(job: Job, now: datetime, report: Report) -> bool:
    """end_time passed: STOP_ROLLOUT (the default) releases nothing more; CANCEL and
    FORCE_CANCEL cancel the job. True when the job was cancelled."""
    end = configs.parse_time(job.scheduling_config.get("end_time"))
    if end is None or now < end:
        return False
    behavior = job.scheduling_config.get("end_behavior", "STOP_ROLLOUT")
    if behavior == "STOP_ROLLOUT":
        if not job.rollout_stopped:
            Job.objects.filter(pk=job.pk).update(rollout_stopped=True)
            job.rollout_stopped = True
        return False
    jobs.cancel_job(
        job,
        force=behavior == "FORCE_CANCEL",
        comment="The schedule's end time passed.",
        reason_code="END_TIME",
        actor=SYSTEM,
        now=now,
    )
    report.canceled.append(job.job_id)
    return True


# --- Continuous jobs -------------------------------------------------------------------------


def follow_groups(job: Job, now: datetime, report: Report) -> None:
    """Devices that now match a target group become late targets (released at once, outside
    the rate); pending executions of devices that left every target are REMOVED."""
    condition = jobs.membership(job)
    jobs.add_targets(job, jobs.target_devices(job, condition), late=True)
    leavers = JobTarget.objects.filter(job=job).exclude(
        device__in=Device.objects.in_service().filter(condition)
    )
    left = list(leavers.values_list("device_id", flat=True))
    if not left:
        return
    leavers.delete()
    report.removed += _move(
        JobExecution.objects.filter(job=job, device_id__in=left, status__in=executions.PENDING),
        ExecutionStatus.REMOVED,
        now,
    )


def targets_joined(group, devices, *, actor: str) -> None:
    """A static group gained devices: every active continuous job targeting it gets them as
    late targets (the next tick releases them)."""
    for job in Job.objects.filter(
        target_groups=group,
        target_selection=TargetSelection.CONTINUOUS,
        status__in=jobs.ACTIVE,
    ).select_related("firmware"):
        pks = [device.pk for device in devices]
        jobs.add_targets(job, jobs.target_devices(job, Q(pk__in=pks)), late=True)


# --- Timers, follow-ups, retries -------------------------------------------------------------


def _move(queryset, status: str, now: datetime, **changes) -> int:
    """Move the (unlocked-by-others) executions to `status` and notify their devices."""
    rows = [
        (pk, device, current)
        for pk, device, current in queryset.select_for_update(skip_locked=True).values_list(
            "pk", "device_id", "status"
        )
        if executions.service_may_move(current, status)
    ]
    if not rows:
        return 0
    devices = {device for _, device, _ in rows}
    before = notifications.heads(devices)
    JobExecution.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
        status=status,
        version_number=F("version_number") + 1,
        last_updated_at=now,
        **changes,
    )
    notifications.send_changes(devices, before)
    ran = [pk for pk, _, current in rows if current == ExecutionStatus.IN_PROGRESS]
    firmware_runs.ended_by_service(ran, actor=SYSTEM)
    return len(rows)


def time_out(job: Job, now: datetime, report: Report) -> None:
    expired = JobExecution.objects.filter(job=job, status=ExecutionStatus.IN_PROGRESS).filter(
        Q(in_progress_deadline__lte=now) | Q(step_deadline__lte=now)
    )
    report.timed_out += _move(expired, ExecutionStatus.TIMED_OUT, now)


NOT_STARTED = "not_started"  # statusDetails reason of an execution canceled for silence


def cancel_not_started(job: Job, now: datetime, report: Report) -> None:
    """A wave's start deadline: QUEUED executions not started within start_deadline_minutes of
    queued_at end CANCELED (a legal end of QUEUED) with statusDetails reason not_started, so a
    silent device ends in a state the operator can read and the rollout counts it.
    Executions a gateway runs are its to end (firmware.delegation): it cancels them on its side
    first (aws_gateway.start_deadline)."""
    if not job.start_deadline_minutes:
        return
    silent = JobExecution.objects.filter(
        job=job,
        status=ExecutionStatus.QUEUED,
        queued_at__lte=now - timedelta(minutes=job.start_deadline_minutes),
        gateway="",  # a gateway's executions are its own to end (aws_gateway.start_deadline)
    )
    report.not_started += _move(
        silent,
        ExecutionStatus.CANCELED,
        now,
        status_details={"reason": NOT_STARTED},
        followed_up_at=now,
    )


def settle_canceled(job: Job, now: datetime, report: Report) -> None:
    """A cancelled wave job whose in-flight devices were let finish (a rollout's abort keeping
    them): their deadlines still apply — in progress too long → TIMED_OUT, SUCCEEDED without
    the version → FAILED at the confirmation deadline — but nothing is retried."""
    time_out(job, now, report)
    follow_up(job, now, report, retry=False)


def follow_up(job: Job, now: datetime, report: Report, *, retry: bool = True) -> None:
    """Finished executions the engine has not looked at: confirm or fail a firmware SUCCEEDED,
    then retry what failed (FAILED, TIMED_OUT) while the retry config allows (and `retry`)."""
    todo = list(
        JobExecution.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(job=job, followed_up_at__isnull=True, status__in=FINAL)
        .select_related("device")[:FOLLOW_UP_BATCH]
    )
    if not todo:
        return
    done, failed = [], []
    for execution in todo:
        if execution.status == ExecutionStatus.SUCCEEDED:
            outcome = _confirmation(job, execution, now)
            if outcome == "confirmed":
                report.confirmed += 1
                done.append(execution)
            elif outcome == "failed":
                report.unconfirmed += 1
                failed.append(execution)
        else:
            failed.append(execution)
    if done:
        JobExecution.objects.filter(pk__in=[e.pk for e in done]).update(followed_up_at=now)
    if failed and retry:
        _retry(job, failed, now, report)
    elif failed:
        JobExecution.objects.filter(pk__in=[e.pk for e in failed]).update(followed_up_at=now)


def _confirmation(job: Job, execution: JobExecution, now: datetime) -> str:
    """ "confirmed", "failed" (deadline passed, now FAILED) or "waiting"."""
    if job.firmware_id is None or _runs(execution.device, job.firmware.version):
        execution.confirmed_at = now
        JobExecution.objects.filter(pk=execution.pk).update(confirmed_at=now)
        if job.firmware_id is not None:
            firmware_runs.confirmed(execution, actor=SYSTEM)
        return "confirmed"
    deadline = execution.last_updated_at + timedelta(minutes=settings.FIRMWARE_CONFIRM_MINUTES)
    if now < deadline:
        if execution.confirmation_deadline is None:
            JobExecution.objects.filter(pk=execution.pk).update(confirmation_deadline=deadline)
        return "waiting"
    reported = execution.device.firmware_version or "nothing"
    details = {
        **execution.status_details,
        "reason": (
            f"Reported SUCCEEDED but the device reports firmware {reported}, not "
            f"{job.firmware.version}, {settings.FIRMWARE_CONFIRM_MINUTES} minutes later."
        ),
    }
    details = dict(list(details.items())[-10:])  # statusDetails holds at most 10 pairs
    execution.status, execution.status_details = ExecutionStatus.FAILED, details
    JobExecution.objects.filter(pk=execution.pk).update(
        status=ExecutionStatus.FAILED,
        status_details=details,
        confirmation_deadline=deadline,
        version_number=F("version_number") + 1,
        last_updated_at=now,
    )
    firmware_runs.unconfirmed(execution, actor=SYSTEM)
    return "failed"


def _runs(device: Device, version: str) -> bool:
    reported = device.firmware_version
    return versions.is_version(reported) and versions.compare(reported, version) == 0


def retries_allowed(retry_config: dict[str, Any], status: str) -> int:
    """How many retries the retry config grants a failure of this status (0 if none)."""
    allowed = [
        item["number_of_retries"]
        for item in retry_config.get("criteria_list", [])
        if item["failure_type"] in (status, "ALL")
    ]
    return min(max(allowed, default=0), configs.MAX_RETRIES)


def _retry(job: Job, failed: list[JobExecution], now: datetime, report: Report) -> None:
    forgiven = retry_offsets(job, [execution.device_id for execution in failed])
    again = [
        execution
        for execution in failed
        if execution.status in executions.RETRYABLE
        and execution.execution_number - forgiven.get(execution.device_id, 0)
        <= retries_allowed(job.retry_config, execution.status)
        and not execution.device.is_decommissioned
    ]
    JobExecution.objects.filter(pk__in=[e.pk for e in failed]).update(followed_up_at=now)
    if not again:
        return
    devices = {execution.device_id for execution in again}
    before = notifications.heads(devices)
    JobExecution.objects.filter(pk__in=[e.pk for e in again]).update(superseded=True)
    JobExecution.objects.bulk_create(
        JobExecution(
            job=job,
            device_id=execution.device_id,
            execution_number=execution.execution_number + 1,
            queued_at=now,
            last_updated_at=now,
        )
        for execution in again
    )
    notifications.send_changes(devices, before)
    report.retried += len(again)


def retry_offsets(job: Job, device_pks: list[Any]) -> dict[Any, int]:
    """Attempts forgiven per device (JobTarget.retry_offset, set by a rollout's reset-retries);
    only wave jobs have any, so plain jobs skip the query."""
    if job.rollout_id is None:
        return {}
    return dict(
        JobTarget.objects.filter(job=job, device_id__in=device_pks, retry_offset__gt=0)
        .values_list("device_id", "retry_offset")
        .order_by()
    )


# --- Abort, completion -----------------------------------------------------------------------


def abort_if_crossed(job: Job, report: Report) -> bool:
    """Cancel the job when an abort criterion's failure share of the executed things reaches
    its threshold, once min_number_of_executed_things were notified (AWS). Final outcomes
    only: an attempt replaced by a retry does not count."""
    criteria = job.abort_config.get("criteria_list") or []
    if not criteria:
        return False
    counts: dict[str, int] = defaultdict(int)
    for status, count in _final_counts(job):
        counts[status] += count
    executed = sum(counts[s] for s in executions.TERMINAL)
    for criterion in criteria:
        if job.released_count < criterion.get("min_number_of_executed_things", 1) or not executed:
            continue
        failures = sum(counts[s] for s in FAILURES[criterion["failure_type"]])
        if failures * 100 >= criterion["threshold_percentage"] * executed:
            jobs.cancel_job(
                job,
                comment=(
                    f"Aborted: {failures} of {executed} executed things "
                    f"{criterion['failure_type']} (threshold "
                    f"{criterion['threshold_percentage']} %)."
                ),
                reason_code="ABORTED",
                actor=SYSTEM,
            )
            report.aborted.append(job.job_id)
            return True
    return False


def _final_counts(job: Job):
    return (
        JobExecution.objects.filter(job=job, superseded=False)
        .exclude(status=ExecutionStatus.SUCCEEDED, confirmed_at__isnull=True)
        .values_list("status")
        .annotate(count=Count("pk"))
        .order_by()
    )


def complete_if_done(job: Job, now: datetime, report: Report) -> None:
    """A snapshot job is COMPLETED when every target was released (or the rollout stopped)
    and every execution is final and followed up (retries queued, successes confirmed)."""
    if job.target_selection != TargetSelection.SNAPSHOT:
        return
    unreleased = JobTarget.objects.filter(job=job, released_at__isnull=True).exists()
    if unreleased and not job.rollout_stopped:
        return
    busy = JobExecution.objects.filter(job=job).filter(
        Q(status__in=executions.PENDING) | Q(followed_up_at__isnull=True, status__in=FINAL)
    )
    if busy.exists():
        return
    Job.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED, completed_at=now)
    report.completed.append(job.job_id)


# --- Release ---------------------------------------------------------------------------------


def release(job_pk: Any, now: datetime, report: Report) -> int:
    """Release up to RELEASE_BATCH targets of one job: late joiners at once, the others at the
    rollout rate, only inside the maintenance windows. Returns how many were released."""
    with transaction.atomic():
        job = lock(job_pk)
        if job is None or job.rollout_stopped:
            return 0
        windows = job.scheduling_config.get("maintenance_windows")
        if windows and not rates.in_window(windows, now):
            return 0
        # Targets on a gateway with its own jobs service go to it whole (firmware.delegation).
        delegation.delegate_targets(job, now)
        zones = _open_zones(job, now)
        if zones == []:
            return 0
        limit = _room(job, RELEASE_BATCH)
        count = _release(job, now, late=True, limit=limit, zones=zones)
        count += _release(job, now, late=False, limit=_paced(job, now, limit - count), zones=zones)
        report.released += count
        return count


def _room(job: Job, limit: int) -> int:
    """A wave's max_in_flight: release only while fewer executions are QUEUED or IN_PROGRESS."""
    if job.max_in_flight is None:
        return limit
    in_flight = JobExecution.objects.filter(job=job, status__in=executions.PENDING).count()
    return max(0, min(limit, job.max_in_flight - in_flight))


def _open_zones(job: Job, now: datetime) -> list[str] | None:
    """A wave's per-device window: the zones of its unreleased targets whose window is open now
    (None: no window, every target may go)."""
    if not job.window_cron:
        return None
    zones = (
        JobTarget.objects.filter(job=job, released_at__isnull=True)
        .values_list("time_zone", flat=True)
        .distinct()
        .order_by()
    )
    duration = job.window_duration_minutes or 0
    return sorted(windows.open_zones(job.window_cron, duration, list(zones), now))


def _paced(job: Job, now: datetime, limit: int) -> int:
    """How many of the job's initial targets may go now; records the pace on the job."""
    if limit <= 0:
        return 0
    succeeded = 0
    criteria = (job.rollout_config.get("exponential_rate") or {}).get("rate_increase_criteria")
    if criteria and "number_of_succeeded_things" in criteria:
        succeeded = JobExecution.objects.filter(
            job=job, status=ExecutionStatus.SUCCEEDED, superseded=False
        ).count()
    rate = rates.rate_per_minute(
        job.rollout_config, notified=job.released_count, succeeded=succeeded
    )
    if rate is None:
        return limit
    pace = None
    if job.rate_window_start is not None:
        pace = rates.Pace(job.rate_window_start, job.rollout_rate, job.rate_window_released)
    allowed, pace = rates.allowance(pace, rate, now)
    allowed = min(allowed, limit)
    job.rollout_rate, job.rate_window_start = pace.rate, pace.started_at
    job.rate_window_released = pace.released + allowed
    Job.objects.filter(pk=job.pk).update(
        rollout_rate=job.rollout_rate,
        rate_window_start=job.rate_window_start,
        rate_window_released=job.rate_window_released,
    )
    return allowed


def _release(
    job: Job, now: datetime, *, late: bool, limit: int, zones: list[str] | None = None
) -> int:
    """Release up to `limit` targets into QUEUED executions with their notifications
    (firmware.release), and count them on the job."""
    count = release_targets(job, now, late=late, limit=limit, zones=zones)
    if count:
        job.released_count += count
        Job.objects.filter(pk=job.pk).update(released_count=job.released_count)
    return count


# --- Reported versions -----------------------------------------------------------------------


def on_reported_versions(updates) -> None:
    """Classic shadow hook (shadows.writes.on_updates): a device that reports
    `firmware_version` has it written to the registry (what it last reported, never what the
    portal assumed) and confirms its firmware executions awaiting that version."""
    latest, received = {}, {}
    for update in updates:
        if isinstance(update.reported.get("firmware_version"), str):
            latest[update.device_pk] = update.reported["firmware_version"]
            received[update.device_pk] = update.at
    if latest:
        note_reported_versions(latest, received=received)


def note_reported_versions(
    latest: dict[Any, str],
    now: datetime | None = None,
    *,
    received: dict[Any, datetime] | None = None,
) -> int:
    """Write each device's reported version and confirm what it proves; returns how many
    executions were confirmed.

    An execution is confirmed at the time its device's report was received (`received`, by
    device; `now` where not given), not when it is processed: the health check's "back online
    after reporting" compares that time with the device's last_seen, which a bridge working
    through a backlog writes with the messages' own receive times."""
    now = now or timezone.now()
    received = received or {}
    stale = Device.objects.filter(pk__in=list(latest)).values_list("pk", "firmware_version")
    changed = [
        Device(pk=pk, firmware_version=latest[pk][:50], updated_at=now)
        for pk, old in stale
        if old != latest[pk]
    ]
    if changed:
        Device.objects.bulk_update(changed, ["firmware_version", "updated_at"])
    waiting = JobExecution.objects.filter(
        device_id__in=list(latest),
        status=ExecutionStatus.SUCCEEDED,
        confirmed_at__isnull=True,
        job__firmware__isnull=False,
    ).values_list("pk", "device_id", "job__firmware__version")
    confirmed = [
        JobExecution(pk=pk, confirmed_at=min(received.get(device, now), now), followed_up_at=now)
        for pk, device, version in waiting
        if versions.is_version(latest[device]) and versions.compare(latest[device], version) == 0
    ]
    if not confirmed:
        return 0
    JobExecution.objects.bulk_update(confirmed, ["confirmed_at", "followed_up_at"])
    proven = [execution.pk for execution in confirmed]
    for execution in JobExecution.objects.filter(pk__in=proven).select_related(
        "job__firmware", "device"
    ):
        firmware_runs.confirmed(execution, actor=f"device:{execution.device.device_id}")
    return len(proven)


def reported_succeeded(execution: JobExecution, actor: str) -> None:
    """firmware_runs' confirmation hook: a device reported a firmware execution SUCCEEDED. It is
    confirmed now if the device already reports the job's version; otherwise by its next report
    of it (on_reported_versions) or failed by the tick once the deadline passes (follow_up)."""
    firmware = execution.job.firmware
    if firmware is not None and _runs(execution.device, firmware.version):
        # Confirmed when the SUCCEEDED was received (note_reported_versions says why).
        now = timezone.now()
        JobExecution.objects.filter(pk=execution.pk).update(
            confirmed_at=min(execution.last_updated_at, now), followed_up_at=now
        )
        firmware_runs.confirmed(execution, actor=actor)


# --- Registry hooks --------------------------------------------------------------------------


def on_devices_transitioned(event) -> None:
    """Decommissioned devices: their pending executions are force-cancelled."""
    if event.to_status == DeviceStatus.DECOMMISSIONED:
        jobs.cancel_for_devices(device.pk for device in event.devices)


def on_membership_changed(event) -> None:
    """A static group gained devices: continuous jobs targeting it get them at the next tick
    (leavers are found by the tick's follow_groups)."""
    if event.added:
        targets_joined(event.group, event.added, actor=event.actor)
