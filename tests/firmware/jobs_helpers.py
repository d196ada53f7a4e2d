"""Small helpers for jobs protocol tests: a job, and executions queued as the engine will queue
them (rows + notify/notify-next through firmware.notifications)."""

import itertools
from datetime import timedelta

from django.utils import timezone

from firmware import notifications
from firmware.models import FirmwareVersion, Job, JobExecution
from fleetportal.models import OutboxMessage

_serial = itertools.count(1)


def make_job(job_id: str | None = None, document=None, **fields) -> Job:
    return Job.objects.create(
        job_id=job_id or f"job-{next(_serial)}",
        document=document if document is not None else {"operation": "reboot"},
        **fields,
    )


def make_firmware(device_type: str = "sensor", version: str = "2.0.0") -> FirmwareVersion:
    return FirmwareVersion.objects.create(
        device_type=device_type,
        version=version,
        version_key=[int(p) for p in version.split(".")],
        file_url="https://example.com/fw.bin",
        file_size=10,
        checksum="0" * 64,
    )


def queue(job: Job, device, *, minutes_ago: int = 0, **fields) -> JobExecution:
    """Queue one execution and send its notifications (notify, notify-next if it is the head)."""
    before = notifications.heads([device.pk])
    execution = JobExecution.objects.create(
        job=job,
        device=device,
        queued_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )
    notifications.send_changes([device.pk], before)
    return execution


def sent(topic_suffix: str = "") -> list[tuple[str, bytes]]:
    """Outbox rows (topic, payload) whose topic ends with topic_suffix, oldest first."""
    rows = OutboxMessage.objects.order_by("id").values_list("topic", "payload")
    return [(t, bytes(p)) for t, p in rows if t.endswith(topic_suffix)]


def clear_outbox() -> None:
    OutboxMessage.objects.all().delete()
