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
    # The clientTokens of the last few accepted updates (oldest first): a device that resends
    # its unacknowledged updates after a lost connection gets the first answers again instead
    # of new versions (shadows.services: the repeat window).
    recent_client_tokens = models.JSONField(default=list, db_default=[], blank=True)
    # The version of the last document the device's gateway sent of this shadow (AWS IoT's
    # shadow version; shadows.mirror): an older or repeated one changes nothing. Null for the
    # portal's own broker, where the portal's version is the only one.
    gateway_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "name"], name="shadow_unique_device_name")
        ]
        ordering = ["device", "name"]

    def __str__(self):
        # The device's id as operators know it (device_id is the row's UUID).
        return f"{self.device.device_id} / {self.name or 'classic'}"

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


# --- Configuration (shadows.configuration): layered values rendered into the `config` shadow


class ConfigValue(models.Model):
    """One configuration key set on a group or on one device: a layer of the configuration.

    A device's effective value of a key is its own value if it has one, else the value of the
    winning group among its groups (DeviceGroup.priority, then the newest group).
    """

    id = models.BigAutoField(primary_key=True)
    group = models.ForeignKey(
        "devices.DeviceGroup",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="config_values",
    )
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, null=True, blank=True, related_name="config_values"
    )
    key = models.CharField("config key", max_length=64)
    value = models.JSONField("config value")
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every change.")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(group__isnull=True) ^ models.Q(device__isnull=True),
                name="configvalue_group_xor_device",
            ),
            models.UniqueConstraint(
                fields=["group", "key"],
                condition=models.Q(group__isnull=False),
                name="configvalue_unique_group_key",
            ),
            models.UniqueConstraint(
                fields=["device", "key"],
                condition=models.Q(device__isnull=False),
                name="configvalue_unique_device_key",
            ),
        ]
        ordering = ["key"]

    def __str__(self):
        return f"{self.key} on {self.scope}"

    @property
    def scope(self) -> str:
        return f"group {self.group}" if self.group_id else f"device {self.device}"


class DeviceConfiguration(models.Model):
    """The seed's device_configurations: one device's effective value of one key, as pushed into
    its `config` shadow, and whether the device has reported it back (applied)."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="configuration")
    config_key = models.CharField(max_length=64)
    config_value = models.JSONField()
    version = models.PositiveIntegerField(help_text="The version of the value it came from.")
    source_group = models.ForeignKey(
        "devices.DeviceGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the device's own value is the effective one.",
    )
    applied = models.BooleanField(default=False)
    applied_at = models.DateTimeField(null=True, blank=True)
    pushed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "config_key"], name="deviceconfiguration_unique_key"
            )
        ]
        indexes = [
            # The drift list: values not applied, oldest push first.
            models.Index(
                fields=["pushed_at"],
                condition=models.Q(applied=False),
                name="deviceconfig_pending_idx",
            ),
        ]
        ordering = ["device", "config_key"]

    def __str__(self):
        return f"{self.device} {self.config_key}"


class ConfigChange(models.Model):
    """Every change of a configuration value: who set or removed which key where, and when."""

    id = models.BigAutoField(primary_key=True)
    group = models.ForeignKey(
        "devices.DeviceGroup", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    device = models.ForeignKey(
        Device, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    scope = models.CharField(max_length=300, help_text="The group or device, as named then.")
    key = models.CharField(max_length=64)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True, help_text="Empty when removed.")
    version = models.PositiveIntegerField()
    actor = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["key", "-created_at"], name="configchange_key_idx")]
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.key} on {self.scope} v{self.version}"
