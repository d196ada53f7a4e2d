"""Models of monitoring's presence part.

PLACEHOLDER written by the summary part (S) so the fleet summary can count presence on its
branch: exactly the fields of the shared interface (issue 14). The presence part's own module
replaces this one at merge."""

from django.db import models

from devices.models import Device

__all__ = ["Presence"]


class Presence(models.Model):
    """A device's connection state; no row = never connected (offline)."""

    device = models.OneToOneField(
        Device, primary_key=True, on_delete=models.CASCADE, related_name="presence"
    )
    online = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    connection = models.CharField(max_length=128, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=32, blank=True)

    def __str__(self):
        return f"{self.device_id} {'online' if self.online else 'offline'}"
