"""Models of monitoring's alerts part.

PLACEHOLDER written by the summary part (S) so the fleet summary can count open alerts on its
branch: the fields of the shared interface (issue 14). The alerts part's own module replaces
this one at merge."""

from django.db import models
from django.utils import timezone

from devices.models import Device

__all__ = ["Alert", "AlertRule"]

SEVERITIES = [("info", "Info"), ("warning", "Warning"), ("critical", "Critical")]


class AlertRule(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(
        max_length=16, choices=[("filter", "Filter"), ("telemetry", "Telemetry")]
    )
    filter = models.JSONField(default=dict, blank=True)
    metric = models.CharField(max_length=64, blank=True)
    op = models.CharField(max_length=8, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField(default=0)
    for_seconds = models.PositiveIntegerField(default=0)
    severity = models.CharField(max_length=16, choices=SEVERITIES, default="warning")
    enabled = models.BooleanField(default=True)
    webhook_url = models.URLField(blank=True)
    created_by = models.CharField(max_length=160, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name


class Alert(models.Model):
    """Open while resolved_at is NULL."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(max_length=16, choices=SEVERITIES)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=160, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["severity", "raised_at"],
                name="alert_open_idx",
                condition=models.Q(resolved_at__isnull=True),
            ),
            models.Index(
                fields=["-raised_at"],
                name="alert_open_latest_idx",
                condition=models.Q(resolved_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.rule_id} {self.device_id} {self.severity}"
