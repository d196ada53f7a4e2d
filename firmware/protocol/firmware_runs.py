"""What a firmware job's execution does to its device (issue 12 items 6 and 7).

While a device runs a firmware execution it is in `maintenance`; when the execution ends it is
`active` again. The device's timeline gets the seed's events with the execution's statusDetails.
DeviceEvent.event_type is a free string, so the firmware app names its events
(firmware.choices.FirmwareEvent) without the devices app knowing firmware.

A SUCCEEDED reported by the device is not yet a success (item 7): it is confirmed when the
device reports the new firmware version. The engine registers that confirmation with
`confirm_with(hook)`; once one is registered, the reported SUCCEEDED is handed to it and the
`firmware_update_success` event is the confirmation's to record. Without one, the reported
SUCCEEDED is recorded as the success.
"""

from collections.abc import Callable, Iterable
from typing import Any

from devices import lifecycle
from devices.choices import DeviceStatus
from devices.services import record_event, transition_device
from firmware.choices import ExecutionStatus, FirmwareEvent
from firmware.models import JobExecution

ReportedSucceeded = Callable[[JobExecution, str], None]  # (execution, actor)
_confirmations: list[ReportedSucceeded] = []


def confirm_with(hook: ReportedSucceeded) -> None:
    """Hand every firmware execution the device reports SUCCEEDED to `hook` (in the transaction
    of the report, with the execution row locked)."""
    if hook not in _confirmations:
        _confirmations.append(hook)


def stop_confirming(hook: ReportedSucceeded) -> None:
    if hook in _confirmations:
        _confirmations.remove(hook)


def started(execution: JobExecution, *, actor: str) -> None:
    """The execution went IN_PROGRESS: its device moves to maintenance (when it may)."""
    if execution.job.firmware_id is None:
        return
    _move(execution, DeviceStatus.MAINTENANCE, actor)
    record_event(
        execution.device, FirmwareEvent.INITIATED, actor=actor, data=_event_data(execution)
    )


def ended(execution: JobExecution, *, actor: str) -> None:
    """The execution went terminal (by the device, or by the engine: timeout, cancel, removal):
    its device is active again, and the outcome is recorded."""
    if execution.job.firmware_id is None:
        return
    if not _other_firmware_running(execution):
        _move(execution, DeviceStatus.ACTIVE, actor)
    if execution.status == ExecutionStatus.SUCCEEDED and _confirmations:
        for hook in _confirmations:
            hook(execution, actor)
        return
    event = (
        FirmwareEvent.SUCCESS
        if execution.status == ExecutionStatus.SUCCEEDED
        else FirmwareEvent.FAILED
    )
    record_event(execution.device, event, actor=actor, data=_event_data(execution))


def ended_by_service(execution_pks: Iterable[Any], *, actor: str) -> None:
    """Executions the engine or an operator ended while they ran (TIMED_OUT, CANCELED with
    force, REMOVED): for firmware jobs, as `ended`."""
    running = JobExecution.objects.filter(
        pk__in=list(execution_pks), job__firmware__isnull=False
    ).select_related("job__firmware", "device")
    for execution in running:
        ended(execution, actor=actor)


def confirmed(execution: JobExecution, *, actor: str) -> None:
    """The device reported the job's version after its SUCCEEDED: the update is a success."""
    record_event(execution.device, FirmwareEvent.SUCCESS, actor=actor, data=_event_data(execution))


def unconfirmed(execution: JobExecution, *, actor: str) -> None:
    """The device never reported the job's version after its SUCCEEDED: the update failed."""
    record_event(execution.device, FirmwareEvent.FAILED, actor=actor, data=_event_data(execution))


def _move(execution: JobExecution, target: str, actor: str) -> None:
    device = execution.device
    if not lifecycle.can_transition(device.status, target):
        return  # e.g. not yet provisioned, or already there: the firmware run does not force it
    execution.device = transition_device(
        device, target, actor=actor, reason=f"firmware job {execution.job.job_id}"
    )


def _other_firmware_running(execution: JobExecution) -> bool:
    return (
        JobExecution.objects.filter(
            device_id=execution.device_id,
            status=ExecutionStatus.IN_PROGRESS,
            job__firmware__isnull=False,
        )
        .exclude(pk=execution.pk)
        .exists()
    )


def _event_data(execution: JobExecution) -> dict[str, Any]:
    firmware = execution.job.firmware
    return {
        "job_id": execution.job.job_id,
        "execution_number": execution.execution_number,
        "status": execution.status,
        "status_details": execution.status_details,
        "firmware_version": firmware.version if firmware else None,
    }
