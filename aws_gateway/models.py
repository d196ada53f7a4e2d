"""What the portal knows of its devices' things on AWS IoT Core — each device's sync state, the
certificates it registered with AWS, the imports of fleets that were on AWS first — and what the
state part keeps beside the apps' own rows: changes on their way to AWS, the AWS jobs portal jobs
were handed to, and how each part's link to AWS is doing."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from aws_gateway.choices import CertificateIssuer, LinkPart, SyncState
from devices.models import Device, DeviceCredential, LongJob, running_heartbeat_index
from firmware.models import Job

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
    """A device certificate AWS IoT knows, and its AWS status: one the portal's CA issued and the
    portal registered (RegisterCertificate), or one AWS issued (its fleet provisioning) that an
    import brought in — the portal holds no key of either and revokes the latter on AWS only."""

    credential = models.OneToOneField(
        DeviceCredential,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="aws_certificate",
    )
    certificate_id = models.CharField(max_length=64, unique=True)
    certificate_arn = models.CharField(max_length=2048)
    aws_status = models.CharField(max_length=32, help_text="ACTIVE, REVOKED, INACTIVE, …")
    issuer = models.CharField(
        max_length=10, choices=CertificateIssuer.choices, default=CertificateIssuer.PORTAL
    )
    registered_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.certificate_id[:12]} ({self.aws_status})"


class FleetImport(LongJob):
    """An import of an existing AWS IoT fleet (thing groups, things, their certificates and
    classic shadows) into the portal, page by page; resumes from `next_token` after a crash."""

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

    class Meta(LongJob.Meta):
        verbose_name = "fleet import from AWS"
        verbose_name_plural = "fleet imports from AWS"
        indexes = [running_heartbeat_index("fleet_import_running_heartbeat")]

    def __str__(self):
        return f"import {self.id} ({self.status})"


class Retried(models.Model):
    """A row waiting for AWS: how often it failed, when it is due again, and why it waits."""

    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)

    class Meta:
        abstract = True


class ShadowPush(Retried):
    """A shadow change the portal accepted for a device on AWS and has not delivered yet
    (UpdateThingShadow, or DeleteThingShadow for a deletion): written in the change's
    transaction, sent in order per device, deleted once AWS accepted it — an outbox for AWS
    (aws_gateway.shadow_push)."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="aws_shadow_pushes")
    thing_name = models.CharField(max_length=128)
    shadow_name = models.CharField(max_length=64, blank=True, help_text="Empty: classic.")
    state = models.JSONField(null=True, help_text="The change's state, as accepted.")
    deletion = models.BooleanField(default=False, help_text="The change deletes the shadow.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = "shadow change for AWS"
        verbose_name_plural = "shadow changes for AWS"
        indexes = [
            # The pusher: each device's oldest change (DISTINCT ON device, id).
            models.Index(fields=["device", "id"], name="awspush_device_order_idx"),
        ]

    def __str__(self):
        return f"{self.thing_name} / {self.shadow_name or 'classic'} #{self.pk}"


class AwsJob(Retried):
    """The AWS IoT job a portal job's devices on AWS were handed to (CreateJob): one per
    delegation (a continuous job's later joiners get another), created by the jobs sender."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="aws_jobs")
    aws_job_id = models.CharField(max_length=64, unique=True)
    things = models.JSONField(default=list, help_text="The thing names it targets.")
    document = models.JSONField(default=dict, help_text="The document AWS delivers.")
    created_at = models.DateTimeField(default=timezone.now)
    created_on_aws_at = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    # The portal job was cancelled: CancelJob (with force) is due; set once done.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_force = models.BooleanField(default=False)
    canceled_on_aws_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "AWS job"
        indexes = [
            # The sender: jobs not created on AWS yet.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(created_on_aws_at__isnull=True),
                name="awsjob_to_create_idx",
            ),
            # The sender: cancellations not sent yet.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(cancel_requested_at__isnull=False, canceled_on_aws_at__isnull=True),
                name="awsjob_to_cancel_idx",
            ),
        ]

    def __str__(self):
        return self.aws_job_id


class LinkStatus(models.Model):
    """How one part of the gateway's link to AWS is doing: the last error and success, the
    failures in a row, and the queue consumer's message counts (/metrics, the admin)."""

    part = models.CharField(max_length=16, primary_key=True, choices=LinkPart.choices)
    healthy = models.BooleanField(default=True)
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row.")
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    applied = models.BigIntegerField(default=0, help_text="Messages or changes that took.")
    duplicates = models.BigIntegerField(default=0, help_text="Repeated or out of date.")
    rejected = models.BigIntegerField(default=0, help_text="Not what the rules send.")

    class Meta:
        verbose_name = "AWS link status"
        verbose_name_plural = "AWS link statuses"

    def __str__(self):
        return self.get_part_display()
