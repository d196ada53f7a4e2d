from django.db import models


class RolloutStatus(models.TextChoices):
    """draft → (approval) → scheduled → running ⇄ paused → completed | aborted | canceled."""

    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"
    CANCELED = "canceled", "Canceled"


class RolloutKind(models.TextChoices):
    UPDATE = "update", "Update"
    # A downgrade: needs a reason, and skips the security-version guard only for the versions
    # the operator lists.
    ROLLBACK = "rollback", "Rollback"


class FailureAction(models.TextChoices):
    """What the rollout does when its failure threshold is crossed."""

    PAUSE = "pause", "Pause (resumable)"
    ABORT_KEEP = "abort_keep", "Abort, let in-flight devices finish"
    ABORT_FORCE = "abort_force", "Abort, force-cancel in-flight devices"


class Failure(models.TextChoices):
    """What may count as a failure toward the threshold (Rollout.failure_kinds)."""

    FAILED = "FAILED", "Failed"
    REJECTED = "REJECTED", "Rejected"
    TIMED_OUT = "TIMED_OUT", "Timed out (did not finish)"
    NOT_STARTED = "NOT_STARTED", "Not started"
    NOT_CONFIRMED = "NOT_CONFIRMED", "Did not report the new version"
    UNHEALTHY = "UNHEALTHY", "Not healthy after the update"


class WaveSelector(models.TextChoices):
    COUNT = "count", "A number of devices"
    PERCENT = "percent", "A percentage of the remaining targets"
    FILTER = "filter", "The targets matching a filter"


class WaveGate(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic (promote when the criteria hold after the soak)"
    MANUAL = "manual", "Manual (an operator approves the next wave)"


class WaveStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SOAKING = "soaking", "Soaking"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PASSED = "passed", "Passed"
    HALTED = "halted", "Halted"
    CANCELED = "canceled", "Canceled"


class DeviceOutcome(models.TextChoices):
    """Where one device of a rollout stands; every device of every wave ends in a final one."""

    ASSIGNED = "assigned", "Assigned (wave not reached)"
    NOTIFIED = "notified", "Notified"
    IN_PROGRESS = "in_progress", "In progress"
    REPORTED = "reported", "Reported success, being verified"
    UPDATED = "updated", "Updated and healthy"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


FINAL_OUTCOMES = (DeviceOutcome.UPDATED, DeviceOutcome.FAILED, DeviceOutcome.CANCELED)
ACTIVE_STATUSES = (
    RolloutStatus.AWAITING_APPROVAL,
    RolloutStatus.SCHEDULED,
    RolloutStatus.RUNNING,
    RolloutStatus.PAUSED,
)
