"""Celery tasks of the shadows app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from shadows import services


@shared_task
def prune_shadow_history() -> int:
    """Delete shadow history older than SHADOW_HISTORY_DAYS; the number of rows deleted."""
    return services.prune_history()


@shared_task
def render_group_configuration(group_pk: str, actor: str) -> int:
    """Push a big group's configuration to its members, in batches (after a change committed)."""
    from devices.models import DeviceGroup
    from shadows.configuration import services as configuration

    group = DeviceGroup.objects.filter(pk=group_pk).first()
    if group is None:
        return 0
    return configuration.render_group(group, actor=actor)


@shared_task
def reconcile_configuration(group_pk: str | None = None) -> int:
    """Render devices whose group membership changed (beat; and after a group is saved)."""
    from devices.models import DeviceGroup
    from shadows.configuration import services as configuration

    group = DeviceGroup.objects.filter(pk=group_pk).first() if group_pk else None
    if group_pk and group is None:
        return 0
    return configuration.reconcile(group)
