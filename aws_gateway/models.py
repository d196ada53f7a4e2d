"""What the AWS gateway keeps beside the apps' own rows: changes on their way to AWS, the AWS
jobs portal jobs were handed to, and how each part's link to AWS is doing."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from aws_gateway.choices import LinkPart
from devices.models import Device
from firmware.models import Job


class Retried(models.Model):
    """A row waiting for AWS: how often it failed, when it is due again, and why it waits."""

    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)

    class Meta:
        abstract = True


class ShadowPush(Retried):
    """A shadow change the portal accepted for a device on AWS and has not delivered yet
    (UpdateThingShadow): written in the change's transaction, sent in order per device, deleted
    once AWS accepted it — an outbox for AWS (aws_gateway.shadow_push)."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="aws_shadow_pushes")
    thing_name = models.CharField(max_length=128)
    shadow_name = models.CharField(max_length=64, blank=True, help_text="Empty: classic.")
    state = models.JSONField(null=True, help_text="The change's state, as accepted.")
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
