"""Beat's work for the fleet summary (settings: FLEET_SUMMARY_REFRESH_SECONDS)."""

from celery import shared_task

from monitoring.summary import services


@shared_task(ignore_result=True)
def refresh_summary() -> None:
    """Recount the fleet; the summary's page hears of it only when a figure changed."""
    services.refresh()
