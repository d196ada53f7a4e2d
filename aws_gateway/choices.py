from django.db import models


class SyncState(models.TextChoices):
    """Where a device stands with its thing on AWS IoT Core."""

    PENDING = "pending", "Waiting to sync"
    SYNCED = "synced", "In sync"
    FAILED = "failed", "Failed: retrying"
    REMOVED = "removed", "Removed from AWS"


# A fleet import's status is a bulk job's (devices.choices.BulkJobStatus).
class Decommission(models.TextChoices):
    """What decommissioning a device does to its thing (FLEETPORTAL_AWS_DECOMMISSION)."""

    DELETE = "delete", "Delete the thing"
    DISABLE = "disable", "Keep the thing, marked decommissioned"


class CertificateIssuer(models.TextChoices):
    """Who signed a device certificate AWS knows: the portal's CA (registered with AWS by the
    portal), or not (AWS's own fleet provisioning, or a CA the team registered there itself)."""

    PORTAL = "portal", "The portal's CA"
    AWS = "aws", "AWS (not the portal's CA)"


# Timeline entries the AWS gateway adds to a device's events (DeviceEvent.event_type).
THING_RECREATED = "aws_thing_recreated"


class LinkPart(models.TextChoices):
    """The parts of the AWS gateway that talk to AWS, each with its own status row."""

    SHADOWS = "shadows", "Shadow delivery (UpdateThingShadow)"
    QUEUE = "queue", "Reports from SQS (runsqs)"
    JOBS = "jobs", "Jobs (CreateJob, reconcile)"
