"""Celery tasks of the shadows app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from shadows import services


@shared_task
def prune_shadow_history() -> int:
    """Delete shadow history older than SHADOW_HISTORY_DAYS; the number of rows deleted."""
    return services.prune_history()


@shared_task(bind=True)
def render_group_configuration(
    self, group_pk: str, actor: str, batch_size: int | None = None
) -> int:
    """Fan a big group's push out: one task per batch of members, so every worker takes part.

    Safe in any order: each batch renders the configuration as it is when the batch runs, so a
    batch of an older change that runs after a newer one changes nothing."""
    from devices.models import DeviceGroup
    from shadows.configuration import services as configuration

    group = DeviceGroup.objects.filter(pk=group_pk).first()
    if group is None:
        return 0
    # The batches go where this task came from (the workers serving that queue).
    queue = (self.request.delivery_info or {}).get("routing_key")
    batches = 0
    for pks in configuration.member_batches(group, batch_size or configuration.RENDER_BATCH):
        render_configuration_batch.apply_async(([str(pk) for pk in pks], actor), queue=queue)
        batches += 1
    return batches


@shared_task
def render_configuration_batch(pks: list[str], actor: str) -> int:
    """Push the configuration of one batch of devices (one transaction)."""
    from shadows.configuration import services as configuration

    return configuration.render_pks(pks, actor=actor)


@shared_task
def reconcile_configuration(group_pk: str | None = None) -> int:
    """Render devices whose group membership changed (beat; and after a group is saved)."""
    from devices.models import DeviceGroup
    from shadows.configuration import services as configuration

    group = DeviceGroup.objects.filter(pk=group_pk).first() if group_pk else None
    if group_pk and group is None:
        return 0
    return configuration.reconcile(group)
