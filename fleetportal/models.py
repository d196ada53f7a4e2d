from django.db import models
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy


class OutboxMessage(models.Model):
    """An MQTT message to a device, written in the transaction of the change that caused it.

    The bridge publishes rows in id order per device (QoS 1) and deletes each after its PUBACK,
    so a change committed while the broker is down still reaches the device when it returns.
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=512)
    payload = models.BinaryField()
    qos = models.PositiveSmallIntegerField(default=1)
    # Ordering and bridge partitioning key: the device the message is for ("" = none).
    device_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            # The publisher claims the oldest rows first (ORDER BY id ... SKIP LOCKED); the pkey
            # serves it. Per-partition claims filter on device_id.
            models.Index(fields=["device_id", "id"], name="outbox_device_idx"),
        ]

    def __str__(self):
        return f"{self.topic} ({len(self.payload)} bytes)"


class BridgePartition(models.Model):
    """How far one partitioned bridge has subscribed: every device registered before covered_at.

    Written by `runbridge --partition K --partitions N` (N > 1) after its SUBACKs; read by
    credential issuance, which waits until the owning partition covers a new device, so a
    device never publishes before its topics have a subscriber (architecture.md §3).
    """

    partition = models.PositiveSmallIntegerField(primary_key=True)
    partitions = models.PositiveSmallIntegerField()
    # Taken before the device query's snapshot: every device committed earlier is subscribed.
    covered_at = models.DateTimeField()
    devices = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"partition {self.partition} of {self.partitions}"


class ApiToken(TokenProxy):
    """An integrator's API token, as the portal's own admin page manages it (key shown once).

    DRF's TokenProxy addresses a token by its user's id, so no URL or form holds the key.
    """

    class Meta:
        proxy = True
        verbose_name = "API token"
        verbose_name_plural = "API tokens"
        permissions = [("manage_others_tokens", "Can manage the API tokens of other users")]


class SecurityEvent(models.Model):
    """A lockout: who was locked out (a username, an address, a device id), by which limit, until.

    Written once per lockout by fleetportal.rate_limits' callers; the admin lists them for the
    Fleet admin. A device's own lockout also appears in its timeline.
    """

    limit = models.CharField(max_length=64, help_text='The limit reached, e.g. "admin-login-user".')
    subject = models.CharField(max_length=255, help_text="The username, address or device id.")
    address = models.GenericIPAddressField(null=True, blank=True)
    locked_until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="security_event_created_idx")]

    def __str__(self):
        return f"{self.subject} locked out ({self.limit})"
