from django.db import models


class LinkPart(models.TextChoices):
    """The parts of the AWS gateway that talk to AWS, each with its own status row."""

    SHADOWS = "shadows", "Shadow delivery (UpdateThingShadow)"
    QUEUE = "queue", "Reports from SQS (runsqs)"
    JOBS = "jobs", "Jobs (CreateJob, reconcile)"
