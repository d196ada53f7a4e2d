"""Celery tasks of the fleetportal app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from fleetportal import resumable


@shared_task
def resume_stalled_jobs() -> dict[str, int]:
    """Queue again the long jobs whose worker died (fleetportal.resumable)."""
    return resumable.resume_stalled()
