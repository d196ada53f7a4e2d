"""Models of monitoring's presence part: each device's presence and per-type health settings."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from devices.models import Device
from monitoring.presence.choices import PresenceReason

__all__ = ["DeviceTypeHealth", "Presence"]

# A key into the shadow's reported state: "battery" or dotted "power.battery".
_STATE_KEY = RegexValidator(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$", "A dotted key.")


class Presence(models.Model):
    """Whether a device is connected now, derived from the broker's log, its presence messages,
    any message it sends and the heartbeat sweep; no row = never connected (offline)."""

    device = models.OneToOneField(
        Device, primary_key=True, on_delete=models.CASCADE, related_name="presence"
    )
    online = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True, help_text="When online last flipped.")
    connection = models.CharField(
        max_length=96, blank=True, help_text='The current or last connection: "address:port@t".'
    )
    # The broker log's own time of the connect line (whole seconds), or the bridge's receive
    # time without one: what a later disconnect is compared with (docs/monitoring-presence.md).
    connection_started = models.DateTimeField(null=True, blank=True)
    connections = models.PositiveBigIntegerField(
        default=0, help_text="Connections seen; the lifecycle events' versionNumber."
    )
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=32, choices=PresenceReason.choices, blank=True)

    class Meta:
        indexes = [
            # The heartbeat sweep probes online rows only (monitoring/presence/sweep.py).
            models.Index(fields=["device"], condition=Q(online=True), name="presence_online_idx"),
        ]

    def __str__(self):
        return f"{self.device_id}: {'online' if self.online else 'offline'}"


class DeviceTypeHealth(models.Model):
    """Health settings of one device type: its heartbeat deadline and where its shadow reports
    battery and signal."""

    device_type = models.CharField(max_length=100, unique=True)
    heartbeat_seconds = models.PositiveIntegerField(
        # Above last_seen's 30 s write window and the bridges' 30 s recheck: a device that talks
        # is never swept.
        validators=[MinValueValidator(60), MaxValueValidator(30 * 86400)],
        help_text="Online devices silent this long are marked offline (heartbeat missed).",
    )
    battery_key = models.CharField(max_length=200, blank=True, validators=[_STATE_KEY])
    signal_key = models.CharField(max_length=200, blank=True, validators=[_STATE_KEY])

    class Meta:
        verbose_name = "device type health"
        verbose_name_plural = "device type health"

    def __str__(self):
        return self.device_type

    @staticmethod
    def default_heartbeat() -> int:
        return settings.PRESENCE_HEARTBEAT_SECONDS
