"""Celery tasks of the shadows app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from shadows import services


@shared_task
def prune_shadow_history() -> int:
    """Delete shadow history older than SHADOW_HISTORY_DAYS; the number of rows deleted."""
    return services.prune_history()
