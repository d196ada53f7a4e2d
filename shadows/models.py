"""Device shadows (device-protocol.md §1, §8) and the history of every accepted version.

One row per (device, name) — name "" is the classic shadow — extending the seed's
device_shadows (reported_state, desired_state, version, updated_at) with per-leaf metadata.

A deleted shadow keeps its row: `live` goes false, the state is cleared and `version` stays, so a
shadow re-created within 48 h carries on from that version (§1.1); after that it restarts at 0.
"""

import uuid

from django.db import models
from django.utils import timezone

from devices.models import Device


class Shadow(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="shadows")
    name = models.CharField(max_length=64, blank=True, help_text="Empty for the classic shadow.")
    desired_state = models.JSONField(default=dict, blank=True)
    reported_state = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=0)
    live = models.BooleanField(
        default=False, help_text="False until the first accepted update and after a delete."
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    last_client_token = models.CharField(
        max_length=64,
        blank=True,
        help_text="clientToken of the last accepted update: a redelivered copy is not re-applied.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "name"], name="shadow_unique_device_name")
        ]
        ordering = ["device", "name"]

    def __str__(self):
        return f"{self.device_id}/{self.name or '(classic)'}"

    @property
    def is_classic(self) -> bool:
        return not self.name


class HistoryOperation(models.TextChoices):
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"


class ShadowHistory(models.Model):
    """One accepted version: the state after it, the request's change (a JSON merge patch), who
    made it and when. Kept for SHADOW_HISTORY_DAYS (shadows.services.prune_history)."""

    id = models.BigAutoField(primary_key=True)
    shadow = models.ForeignKey(Shadow, on_delete=models.CASCADE, related_name="history")
    version = models.PositiveIntegerField()
    operation = models.CharField(
        max_length=10, choices=HistoryOperation.choices, default=HistoryOperation.UPDATE
    )
    state = models.JSONField(default=dict, blank=True, help_text="desired and reported after.")
    change = models.JSONField(null=True, blank=True, help_text="The request's state, as sent.")
    actor = models.CharField(max_length=255)
    client_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["shadow", "-version"], name="shadowhistory_shadow_version")]
        ordering = ["shadow", "-version"]
        verbose_name_plural = "shadow histories"

    def __str__(self):
        return f"{self.shadow} v{self.version}"
