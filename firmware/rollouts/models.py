"""A staged rollout, its waves, where each device stands, and the rollout's timeline."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from devices.models import Device, DeviceGroup
from firmware.models import FirmwareVersion, Job, JobTemplate, validate_job_id
from firmware.rollouts.choices import (
    ACTIVE_STATUSES,
    DeviceOutcome,
    Failure,
    FailureAction,
    RolloutKind,
    RolloutStatus,
    WaveGate,
    WaveSelector,
    WaveStatus,
)

DEVICE_LOCAL = "device_local"  # Rollout.window_timezone: each device's own zone


class Rollout(models.Model):
    """A firmware version (or job template) rolled out to targets in waves that protect the fleet:
    gates, a failure policy, deadlines for silent devices and health-verified promotion."""

    rollout_id = models.CharField(max_length=64, unique=True, validators=[validate_job_id])
    description = models.CharField(max_length=2028, blank=True)
    kind = models.CharField(max_length=16, choices=RolloutKind.choices, default=RolloutKind.UPDATE)
    firmware = models.ForeignKey(
        FirmwareVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="rollouts"
    )
    template = models.ForeignKey(
        JobTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="rollouts"
    )
    document_parameters = models.JSONField(default=dict, blank=True)
    target_devices = models.ManyToManyField(Device, blank=True, related_name="targeting_rollouts")
    target_groups = models.ManyToManyField(
        DeviceGroup, blank=True, related_name="targeting_rollouts"
    )
    status = models.CharField(
        max_length=20, choices=RolloutStatus.choices, default=RolloutStatus.DRAFT
    )
    status_reason = models.CharField(max_length=500, blank=True)

    # Pacing inside a wave: AWS's jobExecutionsRolloutConfig (firmware.configs), as a job takes it.
    rate_config = models.JSONField(default=dict, blank=True)
    retry_config = models.JSONField(default=dict, blank=True)

    # Failure policy: a threshold (count or percent of a wave's finished devices), evaluated once
    # `failure_min_finished` devices of the wave have finished; what counts; what it does.
    failure_threshold_count = models.PositiveIntegerField(null=True, blank=True)
    failure_threshold_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    failure_min_finished = models.PositiveIntegerField(default=1)
    failure_kinds = ArrayField(
        models.CharField(max_length=16, choices=Failure.choices), default=list, blank=True
    )
    failure_action = models.CharField(
        max_length=16, choices=FailureAction.choices, default=FailureAction.PAUSE
    )

    # Silence is failure: notified but not started within N minutes (QUEUED → CANCELED,
    # reason not_started); started but not finished within M minutes (IN_PROGRESS → TIMED_OUT).
    start_deadline_minutes = models.PositiveIntegerField(default=60)
    finish_deadline_minutes = models.PositiveIntegerField(default=120)

    # Verified success: back online within K minutes of reporting the version, and the bounds (a
    # filter-language document over reported.*) holding for the wave's soak time; promotion
    # refuses when the updated devices do worse than the rest by more than the margin.
    health_online_minutes = models.PositiveIntegerField(default=15)
    health_bounds = models.JSONField(null=True, blank=True)
    promotion_margin_percent = models.DecimalField(max_digits=5, decimal_places=2, default=5)

    # Maintenance window: AWS cron + duration in an IANA zone, or DEVICE_LOCAL.
    window_cron = models.CharField(max_length=256, blank=True)
    window_duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    window_timezone = models.CharField(max_length=64, default="UTC")
    # With DEVICE_LOCAL: the zone of a device whose own is missing or unknown.
    window_fallback_timezone = models.CharField(max_length=64, default="UTC")

    # Load spreading: concurrent downloads of the rollout's artifact (503 + Retry-After beyond).
    download_concurrency = models.PositiveIntegerField(null=True, blank=True)
    bytes_served = models.BigIntegerField(default=0, editable=False)

    approval_required = models.BooleanField(default=False)
    approved_by = models.CharField(max_length=200, blank=True, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    rollback_reason = models.CharField(max_length=500, blank=True)
    # A rollback may lower the security version of devices running one of these versions: the
    # versions devices may be rolled back FROM (validation and assignment read it so), not to.
    rollback_allowed_versions = ArrayField(
        models.CharField(max_length=64), default=list, blank=True
    )

    start_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the failure threshold was crossed, and when the halt took effect (the benchmark's
    # "threshold to halt" figure, and what the page shows).
    threshold_crossed_at = models.DateTimeField(null=True, blank=True, editable=False)
    halted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("approve_rollout", "Can approve rollouts and manual gates"),
            ("run_rollout", "Can start, pause, resume and abort rollouts"),
        ]
        indexes = [
            # The rollout tick: rollouts that are scheduled, running or paused.
            models.Index(
                fields=["status"],
                condition=Q(status__in=[s.value for s in ACTIVE_STATUSES]),
                name="rollout_active_idx",
            ),
        ]

    def __str__(self):
        return self.rollout_id

    def may_be_approved_by(self, actor: str) -> bool:
        """The one approval rule, for its start and its manual gates: when the rollout requires
        approval, never by its creator — by login or by their API token (actors "alice" and
        "token:alice" are one person). Who holds firmware.approve_rollout is checked by the
        caller (REST, the page)."""
        return not (self.approval_required and _person(actor) == _person(self.created_by))


def _person(actor: str) -> str:
    return actor.removeprefix("token:")


class Wave(models.Model):
    """One step of a rollout: which devices, how many at once, how long to soak, and its gate.
    Running a wave is one Job of the jobs engine."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveIntegerField()  # 1, 2, … in order
    selector = models.CharField(max_length=8, choices=WaveSelector.choices)
    count = models.PositiveIntegerField(null=True, blank=True)
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    filter = models.JSONField(null=True, blank=True)  # devices.group_filters language
    max_in_flight = models.PositiveIntegerField(null=True, blank=True)
    soak_minutes = models.PositiveIntegerField(default=0)
    gate = models.CharField(max_length=16, choices=WaveGate.choices, default=WaveGate.AUTOMATIC)
    status = models.CharField(max_length=20, choices=WaveStatus.choices, default=WaveStatus.PENDING)
    job = models.OneToOneField(
        Job, null=True, blank=True, on_delete=models.PROTECT, related_name="wave"
    )
    device_count = models.PositiveIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)  # last device final
    soak_until = models.DateTimeField(null=True, blank=True, editable=False)
    promoted_at = models.DateTimeField(null=True, blank=True, editable=False)
    approved_by = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["rollout", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "number"], name="wave_number_unique"),
        ]

    def __str__(self):
        return f"{self.rollout_id} wave {self.number}"


class RolloutDevice(models.Model):
    """A device of a rollout: its wave (by a stable hash, so preview and run agree), where it
    stands, why it failed, and the retries it used."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="devices")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="rollout_entries")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="devices")
    # A stable hash of (rollout, device): the order devices are assigned and released in.
    position = models.BigIntegerField()
    time_zone = models.CharField(max_length=64, blank=True)  # resolved for device-local windows
    outcome = models.CharField(
        max_length=16, choices=DeviceOutcome.choices, default=DeviceOutcome.ASSIGNED
    )
    failure = models.CharField(max_length=16, choices=Failure.choices, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    retries_used = models.PositiveIntegerField(default=0)
    reported_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # True while the rollout is active: one active firmware rollout per device (index below).
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rollout", "device"], name="rollout_device_unique"),
            # One active rollout per device: a second one excludes it (preview) or fails to
            # start on this index, never runs two updates on one device.
            models.UniqueConstraint(
                fields=["device"], condition=Q(active=True), name="rollout_device_one_active"
            ),
        ]
        indexes = [
            # A wave's counts per outcome (the page, the failure policy, the gate).
            models.Index(fields=["wave", "outcome"], name="rollout_device_wave_idx"),
            # The failing devices of a rollout, newest first.
            models.Index(
                fields=["rollout", "-finished_at"],
                condition=Q(outcome="failed"),
                name="rollout_device_failed_idx",
            ),
        ]

    def __str__(self):
        return f"{self.rollout_id} -> {self.device_id}"


class RolloutEvent(models.Model):
    """The rollout's timeline: state changes, gates, approvals, halts — each with its actor."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=200)
    kind = models.CharField(max_length=32)  # firmware.rollouts.states.EVENT_KINDS
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    wave_number = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["rollout", "at"], name="rollout_event_timeline_idx")]

    def __str__(self):
        return f"{self.rollout_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
