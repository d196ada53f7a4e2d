"""The firmware catalog and AWS IoT-style jobs: what devices run, what they are asked to do, and
each device's execution of it."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from devices.models import Device, DeviceGroup
from firmware.choices import ExecutionStatus, JobStatus, TargetSelection

# AWS: jobId and job template ids are 1-64 of [a-zA-Z0-9_-] (device-protocol.md §2.2).
validate_job_id = RegexValidator(
    r"\A[a-zA-Z0-9_-]{1,64}\Z",
    "A job id is 1 to 64 letters, digits, '_' or '-'.",
    code="invalid_job_id",
)


class FirmwareVersion(models.Model):
    """A firmware image for one device type: its artifact (or URL), checksum and signed manifest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device_type = models.CharField(max_length=64)
    version = models.CharField(max_length=64, help_text="Dotted numbers, e.g. 1.10.0.")
    # fleetportal.versions.version_key(version): the order "latest" and comparisons use.
    version_key = ArrayField(models.IntegerField(), editable=False)
    artifact = models.FileField(upload_to="firmware/", blank=True, max_length=500)
    file_url = models.URLField(blank=True, max_length=2000, help_text="When hosted elsewhere.")
    file_size = models.BigIntegerField()
    checksum = models.CharField(max_length=64, help_text="SHA-256, lowercase hex.")
    release_notes = models.TextField(blank=True)
    hardware_versions = ArrayField(
        models.CharField(max_length=64), default=list, blank=True, help_text="Empty: all."
    )
    # The anti-rollback counter: never lower than an earlier version's of the same device type.
    security_version = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(default=dict, editable=False)
    manifest_signature = models.TextField(blank=True, editable=False)  # base64 DER ECDSA
    signing_key_id = models.CharField(max_length=64, blank=True, editable=False)
    is_latest = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["device_type", "-version_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["device_type", "version"], name="firmware_type_version_unique"
            ),
            # One latest per device type, whatever the uploads race.
            models.UniqueConstraint(
                fields=["device_type"], condition=Q(is_latest=True), name="firmware_one_latest"
            ),
        ]
        indexes = [
            # "Versions of a device type, newest first" (catalog pages, latest).
            models.Index(fields=["device_type", "version_key"], name="firmware_type_order_idx"),
        ]

    def __str__(self):
        return f"{self.device_type} {self.version}"


class JobTemplate(models.Model):
    """A reusable job: a document with ${parameters.name} placeholders and default configs."""

    template_id = models.CharField(max_length=64, unique=True, validators=[validate_job_id])
    description = models.CharField(max_length=2028, blank=True)
    document = models.JSONField()
    rollout_config = models.JSONField(default=dict, blank=True)
    abort_config = models.JSONField(default=dict, blank=True)
    timeout_config = models.JSONField(default=dict, blank=True)
    retry_config = models.JSONField(default=dict, blank=True)
    # {"maintenance_windows": [...]} only: AWS's templates hold windows, not start or end times.
    scheduling_config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, editable=False)

    def __str__(self):
        return self.template_id


class Job(models.Model):
    """Something devices are asked to do (AWS IoT Jobs' CreateJob): a document, its targets and
    how it rolls out, times out, retries, aborts and is scheduled."""

    job_id = models.CharField(max_length=64, unique=True, validators=[validate_job_id])
    description = models.CharField(max_length=2028, blank=True)
    document = models.JSONField(help_text="The job document devices receive (≤ 32 KB).")
    firmware = models.ForeignKey(
        FirmwareVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    template = models.ForeignKey(
        JobTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    document_parameters = models.JSONField(default=dict, blank=True)
    target_selection = models.CharField(
        max_length=16, choices=TargetSelection.choices, default=TargetSelection.SNAPSHOT
    )
    target_devices = models.ManyToManyField(Device, blank=True, related_name="targeting_jobs")
    target_groups = models.ManyToManyField(DeviceGroup, blank=True, related_name="targeting_jobs")
    # A job created on the device list's filtered set: the list's parameters (filters and
    # search). Its devices at creation are the targets (a snapshot); kept to say how they were
    # chosen. Empty for jobs on devices and groups.
    target_filter = models.JSONField(default=dict, blank=True, editable=False)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.IN_PROGRESS
    )
    # AWS's configs, stored as sent (snake_case keys of this API) after validation.
    rollout_config = models.JSONField(default=dict, blank=True)
    abort_config = models.JSONField(default=dict, blank=True)
    timeout_config = models.JSONField(default=dict, blank=True)
    retry_config = models.JSONField(default=dict, blank=True)
    scheduling_config = models.JSONField(default=dict, blank=True)
    # A firmware job that moves devices to a lower security version says who allowed it and why.
    downgrade_allowed_by = models.CharField(max_length=200, blank=True)
    downgrade_reason = models.CharField(max_length=500, blank=True)
    force_canceled = models.BooleanField(default=False)
    comment = models.CharField(max_length=2028, blank=True)
    reason_code = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True, editable=False)
    # The engine's rollout bookkeeping (firmware/engine.py): how many targets were released, and
    # the pacing window — the rate it runs at, when it began and how many it released since.
    target_count = models.PositiveIntegerField(default=0, editable=False)
    released_count = models.PositiveIntegerField(default=0, editable=False)
    rollout_rate = models.PositiveIntegerField(default=0, editable=False)
    rate_window_start = models.DateTimeField(null=True, blank=True, editable=False)
    rate_window_released = models.PositiveIntegerField(default=0, editable=False)
    # schedulingConfig's endTime passed with endBehavior STOP_ROLLOUT: nothing more is released.
    rollout_stopped = models.BooleanField(default=False, editable=False)
    canceled_by = models.CharField(max_length=200, blank=True, editable=False)
    # A rollout wave's job (firmware/rollouts): null on plain jobs, which behave as before.
    # At most this many executions QUEUED or IN_PROGRESS at once.
    max_in_flight = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # A QUEUED execution not started this long after queued_at ends CANCELED ("not_started").
    start_deadline_minutes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # A maintenance window evaluated in each target's own zone (JobTarget.time_zone).
    window_cron = models.CharField(max_length=256, blank=True, editable=False)
    window_duration_minutes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # The rollout whose wave this job is: read with the job (no join) when a device's document
    # is delivered, so its download URL names the rollout (download cap, bytes served).
    rollout = models.ForeignKey(
        "firmware.Rollout",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        editable=False,
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [("cancel_job", "Can cancel jobs and job executions")]
        indexes = [
            # The engine's tick: jobs that are running or waiting for their start.
            models.Index(
                fields=["status"],
                condition=Q(status__in=["IN_PROGRESS", "SCHEDULED"]),
                name="job_active_idx",
            ),
        ]

    def __str__(self):
        return self.job_id


class JobExecution(models.Model):
    """One device's attempt at one job (AWS JobExecution). A retry is a new row with
    execution_number + 1; a row exists from the moment the rollout releases it to the device."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="executions")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="job_executions")
    execution_number = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.QUEUED
    )
    status_details = models.JSONField(default=dict, blank=True)
    version_number = models.PositiveIntegerField(default=1)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    last_updated_at = models.DateTimeField(default=timezone.now)
    # Timers (timeoutConfig and the device's step timer); the engine times out what passes them.
    in_progress_deadline = models.DateTimeField(null=True, blank=True)
    step_deadline = models.DateTimeField(null=True, blank=True)
    # The last client tokens answered, so a repeated device message changes nothing twice.
    recent_client_tokens = models.JSONField(default=list, blank=True)
    # The clientToken of the start-next that started it: the one execution a repeat of that
    # start-next can be a repeat of (firmware/protocol/repeats.py), found without reading tokens.
    # A database default too: the engine's release inserts executions with its own SQL.
    start_token = models.CharField(max_length=64, blank=True, editable=False, db_default="")
    # The engine's follow-up of a terminal execution (retry decided, success confirmed or not);
    # null while it still has to look at it.
    followed_up_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A retry (execution_number + 1) replaced this attempt: abort criteria skip it.
    superseded = models.BooleanField(default=False, editable=False)
    # The gateway that runs this execution with its own jobs service (firmware.delegation);
    # blank: the portal's engine, over its own broker. Fixed when the execution is created, so a
    # device moved to another gateway mid-job leaves its running execution where it was.
    gateway = models.CharField(max_length=32, blank=True, default="", db_default="", editable=False)
    # A firmware execution's SUCCEEDED counts once the device reports the job's version
    # (confirmed_at); past confirmation_deadline without it, it ends FAILED.
    confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)
    confirmation_deadline = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["queued_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "device", "execution_number"], name="execution_attempt_unique"
            ),
        ]
        indexes = [
            # A device's pending executions (get, start-next, $next, notify): by status, queue time.
            models.Index(
                fields=["device", "status", "queued_at"],
                condition=Q(status__in=["QUEUED", "IN_PROGRESS"]),
                name="execution_pending_idx",
            ),
            # The executions started by a start-next with this clientToken (then filtered by
            # device): the bridge's jobs batch looks its start-nexts' tokens up here, one probe
            # each (firmware/protocol/batch_sql.py). Set once, when the execution starts, so
            # progress reports stay HOT updates.
            models.Index(
                fields=["start_token", "device"],
                condition=~Q(start_token=""),
                name="execution_start_token_idx",
            ),
            # A job's executions by status (jobProcessDetails, abort criteria, the admin).
            models.Index(fields=["job", "status"], name="execution_job_status_idx"),
            # The device page's executions, newest first (firmware.device_page).
            models.Index(fields=["device", "-queued_at"], name="execution_device_queued_idx"),
            # The engine's timers.
            models.Index(
                fields=["in_progress_deadline"],
                condition=Q(status="IN_PROGRESS"),
                name="execution_deadline_idx",
            ),
            models.Index(
                fields=["step_deadline"],
                condition=Q(status="IN_PROGRESS"),
                name="execution_step_deadline_idx",
            ),
            # The engine's follow-ups: a job's terminal executions it has not handled yet.
            models.Index(
                fields=["job"],
                condition=Q(
                    followed_up_at__isnull=True,
                    status__in=["SUCCEEDED", "FAILED", "TIMED_OUT"],
                ),
                name="execution_followup_idx",
            ),
        ]

    def __str__(self):
        return f"{self.job_id} on {self.device_id} #{self.execution_number}"


class JobTarget(models.Model):
    """A device a job is addressed to, fixed when the job is created (snapshot) or when the
    device joins a target group later (continuous). The engine releases targets into
    executions at the rollout rate; released_at says when."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="targets")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="job_targets")
    # Joined a continuous job's group after creation: released at once, outside the rollout
    # rate (AWS: the rate applies only to the members present at creation).
    late = models.BooleanField(default=False)
    released_at = models.DateTimeField(null=True, blank=True)
    # A rollout wave's target: its release order (the RolloutDevice's stable hash, a
    # deterministic jitter) and the zone its maintenance window is read in. Null / blank on
    # plain jobs, which release in creation order.
    position = models.BigIntegerField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    # Attempts an operator forgave (a rollout's reset-retries): the engine grants retries to
    # execution_number - retry_offset, so the device has its whole retry budget again.
    # db_default: the engine inserts targets with raw INSERT … SELECT that leave it out.
    retry_offset = models.PositiveIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "device"], name="job_target_unique"),
        ]
        indexes = [
            # The engine's release: a job's targets not released yet, by position (null on
            # plain jobs), then creation order.
            models.Index(
                fields=["job", "late", "position", "id"],
                condition=Q(released_at__isnull=True),
                name="job_target_release_order_idx",
            ),
        ]

    def __str__(self):
        return f"{self.job_id} -> {self.device_id}"


# Staged rollouts live in their own package; imported here so Django registers them.
from firmware.rollouts.models import Rollout, RolloutDevice, RolloutEvent, Wave  # noqa: E402, F401
