"""The AWS gateway's Celery tasks: thin callers of its services (registry sync and import;
shadow and job delivery, the jobs reconcile)."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from aws_gateway import (
    errors,
    importer,
    job_delivery,
    job_mirror,
    registry,
    shadow_push,
    status,
    sync_state,
)
from aws_gateway.choices import LinkPart

log = logging.getLogger(__name__)


@shared_task
def sync_things(device_pks: list[str]) -> None:
    """Sync these devices' things now (queued after the commit that changed them)."""
    for pk in device_pks:
        registry.sync(pk)


@shared_task
def sync_due_things() -> int:
    """Beat: sync the devices whose sync is due (new, changed, or failed and due for a retry)."""
    pks = sync_state.lease_due(settings.AWS_SYNC_BATCH)
    for pk in pks:
        registry.sync(pk)
    return len(pks)


@shared_task
def run_fleet_import(import_pk: str) -> None:
    importer.run(import_pk)


@shared_task(name="aws_gateway.tasks.send", ignore_result=True)
def send() -> None:
    """What is due for AWS: shadow changes, then jobs (beat sweeps; commits queue it too)."""
    pushed = shadow_push.push_due()
    created = job_delivery.create_due()
    canceled = job_delivery.cancel_due()
    if pushed or created or canceled:
        log.info(
            "AWS: shadow changes %s; jobs %s; cancellations %s",
            dict(pushed),
            dict(created),
            dict(canceled),
        )


def send_soon() -> None:
    """After a commit that queued something for AWS (best effort: beat sweeps anyway)."""
    try:
        send.delay()
    except Exception:
        log.warning("AWS: could not queue the send task; beat's sweep will send", exc_info=True)


@shared_task(name="aws_gateway.tasks.reconcile_jobs", ignore_result=True)
def reconcile_jobs() -> None:
    try:
        changed = job_mirror.reconcile()
    except errors.AWS_ERRORS as error:
        with transaction.atomic():
            status.failed(LinkPart.JOBS, f"reconcile: {errors.describe(error)}")
        return
    if changed:
        log.info("AWS jobs reconcile: %d execution(s) changed", changed)
