"""The words of alert rules and alerts, as operators see them."""

from django.db import models


class RuleKind(models.TextChoices):
    FILTER = "filter", "Device filter held for a minimum duration"
    TELEMETRY = "telemetry", "Telemetry average over a window against a threshold"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Comparison(models.TextChoices):
    GT = "gt", "greater than"
    GTE = "gte", "greater than or equal to"
    LT = "lt", "less than"
    LTE = "lte", "less than or equal to"


class AlertState(models.TextChoices):
    """The API's `state` filter: open (not resolved), acknowledged (open and acknowledged),
    resolved."""

    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AlertEventType(models.TextChoices):
    """DeviceEvent.event_type of an alert's changes on the device's timeline."""

    RAISED = "alert_raised", "Alert raised"
    RESOLVED = "alert_resolved", "Alert resolved"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (will be tried)"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (no more attempts)"
