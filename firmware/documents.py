"""What devices are sent about job executions (device-protocol.md §2.2), built from rows.

Timestamps are epoch seconds (§0.5). Fields AWS leaves out when unset are left out here too:
`startedAt` while QUEUED, `statusDetails` when empty.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from firmware.models import Job, JobExecution


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# How a job's stored document becomes the one a device receives (firmware jobs put a download
# URL signed for the device there); the identity by default. Set by the app that needs it.
document_renderer: Callable[[JobExecution], dict[str, Any]] = lambda execution: (  # noqa: E731
    execution.job.document
)


# Whether the renderer gives each device of this job a document of its own (a firmware job's
# signed URL). When not, a release to thousands of devices serializes the document once
# (firmware.release). Set by the app that sets document_renderer.
document_per_device: Callable[[Job], bool] = lambda job: False  # noqa: E731


def job_document(execution: JobExecution) -> dict[str, Any]:
    return document_renderer(execution)


def summary(execution: JobExecution) -> dict[str, Any]:
    """JobExecutionSummary: what `get` and `notify` list."""
    data: dict[str, Any] = {
        "jobId": execution.job.job_id,
        "queuedAt": epoch(execution.queued_at),
        "lastUpdatedAt": epoch(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.started_at is not None:
        data["startedAt"] = epoch(execution.started_at)
    return data


def state(execution: JobExecution) -> dict[str, Any]:
    """JobExecutionState: what an update's reply carries (includeJobExecutionState, errors)."""
    data: dict[str, Any] = {
        "status": execution.status,
        "versionNumber": execution.version_number,
    }
    if execution.status_details:
        data["statusDetails"] = execution.status_details
    return data


def execution_data(execution: JobExecution, *, include_document: bool = True) -> dict[str, Any]:
    """JobExecutionData: what `start-next`, `{jobId}/get` and `notify-next` carry."""
    data: dict[str, Any] = {
        "jobId": execution.job.job_id,
        "thingName": execution.device.device_id,
        "status": execution.status,
        "queuedAt": epoch(execution.queued_at),
        "lastUpdatedAt": epoch(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.status_details:
        data["statusDetails"] = execution.status_details
    if execution.started_at is not None:
        data["startedAt"] = epoch(execution.started_at)
    if include_document:
        data["jobDocument"] = job_document(execution)
    return data


def seconds_before_timed_out(
    in_progress_deadline: datetime | None, step_deadline: datetime | None, now: datetime
) -> int | None:
    """AWS's approximateSecondsBeforeTimedOut (the HTTP data plane's JobExecution only): whole
    seconds until the earlier of the two timers, 0 once it passed (the engine's next tick
    times it out); None when no timer runs."""
    deadlines = [d for d in (in_progress_deadline, step_deadline) if d is not None]
    if not deadlines:
        return None
    return max(0, int((min(deadlines) - now).total_seconds()))
