"""Actions on every device of a list filter, run by a Celery worker with progress.

The operator filters the device list and picks an action; `start` checks it (permission is the
caller's, the rest here: a known target, at most settings.BULK_ACTION_MAX_DEVICES devices —
beyond it refused with the cap stated) and queues the job. The worker takes the filter's devices
in primary-key order, STEP devices a step, each step one transaction that locks the job row,
applies the same service an admin action calls (devices.services / devices.groups) and commits
the counters with a heartbeat — the long-job rules of fleetportal.resumable, like bulk
provisioning. Devices that start matching the filter while the job runs are acted on when the
keyset reaches them; the job page shows processed against the count at the start.
"""

import logging
import uuid
from collections.abc import Mapping

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from devices import device_list, groups, services
from devices.choices import BulkActionKind, BulkJobStatus, DeviceStatus
from devices.models import BulkDeviceAction, Device, DeviceGroup
from fleetportal import live, resumable
from fleetportal.errors import DomainError

logger = logging.getLogger(__name__)

STEP = 500
MAX_REFUSALS_KEPT = 50


class BulkActionRefused(DomainError):
    field = "action"
    code = "bulk_action_refused"


def live_group(job_pk) -> str:
    """The channel-layer group of a bulk action's page (fleetportal.live)."""
    return f"bulkaction.{uuid.UUID(str(job_pk)).hex}"


def start(
    action: str, target: str, params: Mapping[str, str], *, actor: str, reason: str = ""
) -> BulkDeviceAction:
    """Check the action and the size of the filtered set; store the job and queue it."""
    _check_target(action, target)
    params = device_list.query_params(params)
    try:
        matching = device_list.filtered_devices(params)
        cap = settings.BULK_ACTION_MAX_DEVICES
        total = matching.order_by().values("pk")[: cap + 1].count()
    except device_list.BadListFilter as exc:
        raise BulkActionRefused(str(exc)) from None
    if total > cap:
        raise BulkActionRefused(
            f"A bulk action takes at most {cap:,} devices; this filter matches more. "
            "Narrow the list first."
        )
    if total == 0:
        raise BulkActionRefused("The filter matches no device.")
    with transaction.atomic():
        job = BulkDeviceAction.objects.create(
            action=action,
            target=target,
            reason=reason[:500],
            params=params,
            total=total,
            created_by=actor,
        )
        transaction.on_commit(lambda: run_bulk_action_task.delay(str(job.pk)))
    return job


def _check_target(action: str, target: str) -> None:
    if action == BulkActionKind.TRANSITION:
        if target not in DeviceStatus.values:
            raise BulkActionRefused(f"{target[:40]!r} is not a device status.")
    elif action == BulkActionKind.ADD_TO_GROUP:
        try:
            group = DeviceGroup.objects.get(pk=target)
        except (DeviceGroup.DoesNotExist, ValidationError):
            raise BulkActionRefused("No such group.") from None
        if group.is_dynamic:
            raise BulkActionRefused("A dynamic group's members come from its filter.")
    else:
        raise BulkActionRefused(f"Unknown action {action[:40]!r}.")


@shared_task(acks_late=True)
def run_bulk_action_task(job_id: str) -> None:
    run(job_id)


def run(job_id: str) -> None:
    """Carry the job on from where it stands; safe to run again, or twice at once."""
    claimed = BulkDeviceAction.objects.filter(
        pk=job_id,
        status__in=[BulkJobStatus.QUEUED, BulkJobStatus.RUNNING, BulkJobStatus.FAILED],
    ).update(status=BulkJobStatus.RUNNING, error="", heartbeat_at=timezone.now())
    if not claimed:
        return
    try:
        while _step(job_id):
            pass
    except Exception as exc:
        logger.exception("Bulk action %s failed", job_id)
        with transaction.atomic():
            BulkDeviceAction.objects.filter(pk=job_id).update(
                status=BulkJobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            live.emit(live_group(job_id), "job", {"type": "job.changed"})
        raise


def _step(job_id: str) -> bool:
    with transaction.atomic():
        job = BulkDeviceAction.objects.select_for_update().get(pk=job_id)
        if job.status != BulkJobStatus.RUNNING:
            return False
        devices = _next_devices(job)
        moved, refused = _apply(job, devices)
        job.processed += len(devices)
        job.succeeded += moved
        job.refused += len(refused)
        room = MAX_REFUSALS_KEPT - len(job.refusals)
        job.refusals.extend(refused[: max(room, 0)])
        job.heartbeat_at = timezone.now()
        if devices:
            job.last_pk = devices[-1].pk
        if len(devices) < STEP:
            job.status, job.finished_at = BulkJobStatus.FINISHED, job.heartbeat_at
        job.save()
        live.emit(live_group(job.pk), "job", {"type": "job.changed"})
        return job.status == BulkJobStatus.RUNNING


def _next_devices(job: BulkDeviceAction) -> list[Device]:
    devices = device_list.filtered_devices(job.params)
    if job.last_pk is not None:
        devices = devices.filter(pk__gt=job.last_pk)
    return list(devices.order_by("pk")[:STEP])


def _apply(job: BulkDeviceAction, devices: list[Device]) -> tuple[int, list[dict]]:
    """(devices changed, refusals) for one step, through the services an admin action uses."""
    if not devices:
        return 0, []
    if job.action == BulkActionKind.TRANSITION:
        moved, refused = services.transition_devices(
            devices, job.target, actor=job.created_by, reason=job.reason
        )
        why = f"cannot move to {job.target}"
        return len(moved), [{"device_id": d.device_id, "message": why} for d in refused]
    group = DeviceGroup.objects.get(pk=job.target)
    in_service = [d for d in devices if not d.is_decommissioned]
    groups.assign_devices(in_service, group, actor=job.created_by)
    refused = [
        {"device_id": d.device_id, "message": "decommissioned"}
        for d in devices
        if d.is_decommissioned
    ]
    return len(in_service), refused


def claim_stalled(cutoff) -> list[str]:
    """Running jobs whose worker went quiet before cutoff, claimed by refreshing the heartbeat."""
    return resumable.claim_stalled_rows(BulkDeviceAction, cutoff)


RESUMABLE = resumable.JobKind(
    "bulk device action", claim_stalled, lambda job_id: run_bulk_action_task.delay(job_id)
)
