"""Small builders for the jobs tests: a firmware version, a job, what the outbox holds."""

import json
from datetime import UTC, datetime, timedelta

from firmware import jobs
from firmware.models import FirmwareVersion, Job, JobExecution
from fleetportal import versions
from fleetportal.models import OutboxMessage

T0 = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)  # a Monday


def at(seconds: float = 0, *, minutes: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds, minutes=minutes)


def job_form(**fields) -> dict:
    """The admin's add-job form as the browser posts it: every field present, empty unless
    given."""
    data = {
        "job_id": "job-1",
        "description": "",
        "run": "document",
        "firmware": "",
        "downgrade_reason": "",
        "template": "",
        "document_parameters": "",
        "document": '{"operation": "reboot"}',
        "target_selection": "SNAPSHOT",
        "increase_on": "notified",
        "end_behavior": "",
        "maintenance_windows": "",
        "_save": "Save",
    }
    return {**data, **fields}


def make_version(version: str = "2.0.0", device_type: str = "sensor", **fields) -> FirmwareVersion:
    fields.setdefault("file_size", 1024)
    fields.setdefault("checksum", "ab" * 32)
    fields.setdefault("file_url", f"https://files.example.com/{device_type}-{version}.bin")
    return FirmwareVersion.objects.create(
        version=version,
        device_type=device_type,
        version_key=list(versions.version_key(version)),
        **fields,
    )


def make_job(job_id: str = "job-1", *, devices=(), groups=(), now=None, **fields) -> Job:
    fields.setdefault("document", {"operation": "reboot"})
    targets = {"devices": [d.device_id for d in devices], "groups": [g.name for g in groups]}
    return jobs.create_job(
        {"job_id": job_id, "targets": targets, **fields}, actor="operator", now=now or at()
    )


def executions_of(job: Job, **filters) -> list[JobExecution]:
    return list(JobExecution.objects.filter(job=job, **filters).order_by("device__device_id"))


def sent(kind: str = "notify") -> list[tuple[str, dict]]:
    """(device_id, payload) of the outbox's jobs/<kind> messages, oldest first."""
    rows = OutboxMessage.objects.filter(topic__endswith=f"/jobs/{kind}").order_by("id")
    return [(row.device_id, json.loads(bytes(row.payload))) for row in rows]


def start(execution: JobExecution, now: datetime, **fields) -> None:
    """What the device protocol does on start-next (set here directly)."""
    JobExecution.objects.filter(pk=execution.pk).update(
        status="IN_PROGRESS", started_at=now, last_updated_at=now, version_number=2, **fields
    )


def finish(execution: JobExecution, status: str, now: datetime, **details) -> None:
    JobExecution.objects.filter(pk=execution.pk).update(
        status=status, last_updated_at=now, status_details=details
    )
