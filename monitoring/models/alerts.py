"""Models of monitoring's alerts part: rules, the conditions they track, alerts, webhook deliveries.

What the rules mean and how evaluation uses these tables: monitoring/alerts/evaluation.py and
docs/monitoring-alerts.md.
"""

from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from django.db import models
from django.utils import timezone

from devices.models import Device
from monitoring.alerts import rules
from monitoring.alerts.choices import (
    AlertEventType,
    Comparison,
    DeliveryStatus,
    RuleKind,
    Severity,
)

__all__ = ["Alert", "AlertCondition", "AlertRule", "WebhookDelivery"]

NO_NUL = [ProhibitNullCharactersValidator()]


class AlertRule(models.Model):
    """A condition on devices that raises an alert per device once it has held long enough."""

    name = models.CharField(max_length=100, unique=True, validators=NO_NUL)
    description = models.TextField(max_length=2000, blank=True, validators=NO_NUL)
    kind = models.CharField(max_length=16, choices=RuleKind.choices, default=RuleKind.FILTER)
    filter = models.JSONField(
        default=dict,
        blank=True,
        help_text="kind=filter: a dynamic-group filter document (devices/group_filters.py).",
    )
    metric = models.CharField(
        max_length=64,
        blank=True,
        validators=NO_NUL,
        help_text="kind=telemetry: the telemetry field averaged over the window.",
    )
    op = models.CharField(max_length=3, choices=Comparison.choices, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(rules.MIN_WINDOW_SECONDS),
            MaxValueValidator(rules.MAX_WINDOW_SECONDS),
        ],
        help_text="kind=telemetry: the averaging window.",
    )
    for_seconds = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(rules.MAX_FOR_SECONDS)],
        help_text="How long the condition must hold for a device before its alert is raised.",
    )
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    webhook_url = models.URLField(
        max_length=500,
        blank=True,
        validators=NO_NUL,
        help_text="Where raises and resolutions are POSTed, signed (docs/monitoring-alerts.md).",
    )
    created_by = models.CharField(max_length=160, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        problems = rules.problems(self)
        if problems:
            raise ValidationError(problems)


class AlertCondition(models.Model):
    """Since when a rule's condition has held for a device (not yet long enough, or alerting).

    Evaluation inserts a row when a device starts to match and deletes it when it stops; an
    alert is raised once `holding_since` is for_seconds old."""

    # Served by the unique constraint below, which leads with rule.
    rule = models.ForeignKey(
        AlertRule, on_delete=models.CASCADE, related_name="conditions", db_index=False
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="alert_conditions")
    holding_since = models.DateTimeField()

    class Meta:
        constraints = [
            # Evaluation's per-rule INSERT … ON CONFLICT, DELETE and the raise's SELECT (leads
            # with rule).
            models.UniqueConstraint(fields=["rule", "device"], name="alert_condition_rule_device")
        ]

    def __str__(self):
        return f"{self.rule_id} on {self.device_id} since {self.holding_since}"


class Alert(models.Model):
    """One device for which one rule's condition held: open until it stops holding."""

    # Both served by the composite indexes below, which lead with them.
    rule = models.ForeignKey(
        AlertRule, on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    severity = models.CharField(max_length=16, choices=Severity.choices)
    raised_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=160, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        permissions = [("acknowledge_alert", "Can acknowledge alerts")]
        constraints = [
            # Never two open alerts for one (rule, device), however many evaluations run at
            # once: the raise is INSERT … ON CONFLICT DO NOTHING on this index. It also serves
            # the resolve (rule = … AND resolved_at IS NULL).
            models.UniqueConstraint(
                fields=["rule", "device"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_per_rule_device",
            )
        ]
        indexes = [
            # The latest open alerts (fleet summary, ?state=open), newest first.
            models.Index(
                fields=["-raised_at", "-id"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_open_raised_idx",
            ),
            # Open alerts counted by severity (fleet summary): an index-only scan.
            models.Index(
                fields=["severity"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_open_severity_idx",
            ),
            # The alert list, newest first (cursor paging), and ?state=resolved.
            models.Index(fields=["-raised_at", "-id"], name="alert_raised_idx"),
            # ?rule=, ?device=, ?severity= on the list, newest first.
            models.Index(fields=["rule", "-raised_at", "-id"], name="alert_rule_raised_idx"),
            models.Index(fields=["device", "-raised_at", "-id"], name="alert_device_raised_idx"),
            models.Index(
                fields=["severity", "-raised_at", "-id"], name="alert_severity_raised_idx"
            ),
        ]

    def __str__(self):
        return f"{self.rule_id} on {self.device_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class WebhookDelivery(models.Model):
    """One signed POST of an alert's raise or resolution to its rule's webhook, with its tries."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    # The rule's, kept here so the list filters by rule without a join.
    rule = models.ForeignKey(
        AlertRule, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.CharField(max_length=32, choices=AlertEventType.choices)
    url = models.URLField(max_length=500)
    payload = models.JSONField(help_text="The document POSTed (the same on every attempt).")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The retry sweep: pending deliveries whose attempt is due.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status=DeliveryStatus.PENDING),
                name="delivery_pending_due_idx",
            ),
            # The list, newest first, and ?status= / ?rule= on it.
            models.Index(fields=["-created_at", "-id"], name="delivery_created_idx"),
            models.Index(fields=["status", "-created_at", "-id"], name="delivery_status_idx"),
            models.Index(fields=["rule", "-created_at", "-id"], name="delivery_rule_idx"),
        ]

    def __str__(self):
        return f"{self.event} of alert {self.alert_id}: {self.status}"
