"""The jobs engine's door to device gateways that run jobs themselves (fleetportal.gateways).

The engine releases a job's targets into executions and notifies devices on the portal's
broker at the job's rollout rate (firmware.release). A gateway with its own jobs service (AWS
IoT Jobs: aws_gateway) registers here which devices are its (`condition`, a filter on Device)
and `delegate`, which takes them over: at the job's first release step — and at a later one for
a continuous job's late joiners — its targets are marked released at once, each gets a QUEUED
execution (no notification: the gateway delivers the job), and `delegate(job, devices, now)`
is called inside the engine's transaction to queue the hand-over in it.

From then on those executions are the gateway's to move: it mirrors the states its own service
reports into them, so everything reading executions (job counts, abort criteria, the staged
rollouts' outcomes and gates, completion) reads them unchanged, and to end: the engine's
start deadline leaves them alone (the gateway cancels a silent one on its side first). A job
with devices on both gateways stays one portal job: its broker devices paced by the engine, the
others by the gateway. A gateway whose service reads maintenance windows in some zones only
(AWS: UTC) says so (`window_zones`); a rollout whose window it cannot follow is refused.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, Q, QuerySet

from devices.models import Device
from firmware.choices import ExecutionStatus
from firmware.models import Job, JobExecution, JobTarget
from fleetportal import gateways


@dataclass(frozen=True)
class Delegated:
    """A device whose target was handed to a gateway, with its new execution's number."""

    device_pk: Any
    device_id: str
    execution_number: int


Delegate = Callable[[Job, list[Delegated], datetime], None]
Canceled = Callable[[Job, bool], None]


@dataclass(frozen=True)
class _Door:
    condition: Callable[[], Q]
    delegate: Delegate
    canceled: Canceled | None = None
    window_zones: frozenset[str] | None = None  # None: windows in any zone


_doors: dict[str, _Door] = {}


def register(
    gateway: str,
    condition: Callable[[], Q],
    delegate: Delegate,
    canceled: Canceled | None = None,
    *,
    window_zones: frozenset[str] | None = None,
) -> None:
    """Devices matching `condition()` (a Q on Device) have their job targets handed to
    `delegate` instead of being released by the engine; `canceled(job, force)` is told when a
    job is cancelled (CancelJob, an abort), in the cancelling transaction. `window_zones`: the
    only zones the gateway's service reads a maintenance window in."""
    _doors[gateway] = _Door(condition, delegate, canceled, window_zones)


def window_refused(devices: QuerySet[Device], zone: str) -> str | None:
    """Why a maintenance window in `zone` cannot pace some of `devices` (on a gateway that
    reads windows in other zones only), or None when every gateway can follow it."""
    for name, door in _doors.items():
        if door.window_zones is None or zone in door.window_zones:
            continue
        example = devices.filter(door.condition()).values_list("device_id", flat=True).first()
        if example is not None:
            label = gateways.get(name).label
            allowed = "UTC" if "UTC" in door.window_zones else " or ".join(door.window_zones)
            return (
                f"{label} runs maintenance windows in {allowed} only, and targets are on it "
                f'(e.g. {example}): give the window in "UTC", its cron in UTC time, or put '
                "those devices in a rollout of their own."
            )
    return None


def job_canceled(job: Job, *, force: bool) -> None:
    """firmware.jobs.cancel_job: let every gateway that took part cancel its part too."""
    for door in _doors.values():
        if door.canceled is not None:
            door.canceled(job, force)


def delegate_targets(job: Job, now: datetime) -> int:
    """Hand the job's unreleased targets on delegating gateways over (engine.release, with the
    job locked); returns how many."""
    total = 0
    for gateway, door in _doors.items():
        taken = _take(job, gateway, door.condition(), now)
        if taken:
            door.delegate(job, taken, now)
            total += len(taken)
    if total:
        # Released as far as the job's counts go: the gateway notifies them (AWS's own rate).
        job.released_count += total
        Job.objects.filter(pk=job.pk).update(released_count=job.released_count)
    return total


def _take(job: Job, gateway: str, condition: Q, now: datetime) -> list[Delegated]:
    targets = list(
        JobTarget.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(job=job, released_at__isnull=True, device__in=Device.objects.filter(condition))
        .order_by("position", "pk")
        .values_list("pk", "device_id", "device__device_id")
    )
    if not targets:
        return []
    JobTarget.objects.filter(pk__in=[pk for pk, _, _ in targets]).update(released_at=now)
    earlier = dict(
        JobExecution.objects.filter(job=job, device__in=[d for _, d, _ in targets])
        .values("device")
        .annotate(last=Max("execution_number"))
        .values_list("device", "last")
    )
    taken = [Delegated(pk, device_id, earlier.get(pk, 0) + 1) for _, pk, device_id in targets]
    JobExecution.objects.bulk_create(
        JobExecution(
            job=job,
            device_id=d.device_pk,
            execution_number=d.execution_number,
            status=ExecutionStatus.QUEUED,
            queued_at=now,
            last_updated_at=now,
            gateway=gateway,
        )
        for d in taken
    )
    return taken
