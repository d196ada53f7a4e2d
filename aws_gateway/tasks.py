"""The AWS gateway's Celery tasks: thin callers of the registry sync and the import."""

from celery import shared_task
from django.conf import settings

from aws_gateway import importer, registry, sync_state


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
