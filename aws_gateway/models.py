"""What the portal knows of its devices' things on AWS IoT Core: each device's sync state, the
certificates it registered with AWS, and the imports of fleets that were on AWS first."""

import uuid

from django.db import models
from django.utils import timezone

from aws_gateway.choices import SyncState
from devices.choices import BulkJobStatus
from devices.models import Device, DeviceCredential, running_heartbeat_index

WAITING = (SyncState.PENDING, SyncState.FAILED)


class ThingSync(models.Model):
    """One device's thing on AWS IoT Core: in sync, waiting to sync, or failing (and why)."""

    device = models.OneToOneField(
        Device, on_delete=models.CASCADE, primary_key=True, related_name="thing_sync"
    )
    state = models.CharField(max_length=20, choices=SyncState.choices, default=SyncState.PENDING)
    thing_name = models.CharField(max_length=128, blank=True)
    thing_arn = models.CharField(max_length=2048, blank=True)
    # The thing's version on AWS after the last sync (UpdateThing bumps it).
    thing_version = models.BigIntegerField(null=True, blank=True)
    # Each change to sync bumps `generation`; a sync records the generation it started from,
    # so a change that lands while it runs leaves the row pending instead of being lost.
    generation = models.PositiveIntegerField(default=1)
    synced_generation = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="The last notable event.")
    synced_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "thing sync state"
        indexes = [
            # The sweep: rows waiting (pending or failed) whose next attempt is due.
            models.Index(
                fields=["next_attempt_at"],
                name="thing_sync_due_idx",
                condition=models.Q(state__in=WAITING),
            ),
            # The admin's "failed" filter and the dashboard's count.
            models.Index(fields=["state"], name="thing_sync_state_idx"),
        ]

    def __str__(self):
        return f"{self.device.device_id}: {self.get_state_display()}"


class RegisteredCertificate(models.Model):
    """A portal certificate registered with AWS IoT (RegisterCertificate), and its AWS status."""

    credential = models.OneToOneField(
        DeviceCredential,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="aws_certificate",
    )
    certificate_id = models.CharField(max_length=64, unique=True)
    certificate_arn = models.CharField(max_length=2048)
    aws_status = models.CharField(max_length=32, help_text="ACTIVE, REVOKED, INACTIVE, …")
    registered_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.certificate_id[:12]} ({self.aws_status})"


class FleetImport(models.Model):
    """An import of an existing AWS IoT fleet (thing groups, things, their certificates and
    classic shadows) into the portal, page by page; resumes from `next_token` after a crash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(
        max_length=20, choices=BulkJobStatus.choices, default=BulkJobStatus.QUEUED
    )
    with_certificates = models.BooleanField(default=True)
    with_shadows = models.BooleanField(default=True)
    # ListThings' nextToken of the next page ("" before the first page and after the last).
    next_token = models.TextField(blank=True, editable=False)
    groups_done = models.BooleanField(default=False, editable=False)
    pages = models.PositiveIntegerField(default=0)
    things_seen = models.PositiveIntegerField(default=0)
    devices_created = models.PositiveIntegerField(default=0)
    devices_updated = models.PositiveIntegerField(default=0)
    groups_created = models.PositiveIntegerField(default=0)
    certificates_imported = models.PositiveIntegerField(default=0)
    shadows_imported = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(
        default=list, blank=True, help_text='The first things not imported: [{"thing", "why"}].'
    )
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=160)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "fleet import from AWS"
        verbose_name_plural = "fleet imports from AWS"
        indexes = [running_heartbeat_index("fleet_import_running_heartbeat")]

    def __str__(self):
        return f"import {self.id} ({self.status})"
