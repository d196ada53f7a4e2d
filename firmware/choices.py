from django.db import models


class JobStatus(models.TextChoices):
    """A job's status (AWS DescribeJob `status`)."""

    SCHEDULED = "SCHEDULED", "Scheduled"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    CANCELED = "CANCELED", "Canceled"


class ExecutionStatus(models.TextChoices):
    """A job execution's status (device-protocol.md §2.4); the values are AWS's, as sent."""

    QUEUED = "QUEUED", "Queued"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    TIMED_OUT = "TIMED_OUT", "Timed out"
    REJECTED = "REJECTED", "Rejected"
    REMOVED = "REMOVED", "Removed"
    CANCELED = "CANCELED", "Canceled"


class TargetSelection(models.TextChoices):
    SNAPSHOT = "SNAPSHOT", "Snapshot"
    CONTINUOUS = "CONTINUOUS", "Continuous"


class FirmwareEvent(models.TextChoices):
    """The device timeline events of a firmware execution (DeviceEvent.event_type, the seed's)."""

    INITIATED = "firmware_update_initiated", "Firmware update initiated"
    SUCCESS = "firmware_update_success", "Firmware update succeeded"
    FAILED = "firmware_update_failed", "Firmware update failed"
