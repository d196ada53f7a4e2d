"""Celery tasks of telemetry (beat schedule in settings, "Monitoring: telemetry")."""

from celery import shared_task

from monitoring.telemetry import partitions, rollups


@shared_task
def roll_up() -> int:
    """Add the points received since the last run to the minute and hour rollups."""
    return rollups.roll_up()


@shared_task
def maintain_partitions() -> dict:
    """Create the days ahead, drop the days past retention."""
    created, dropped = partitions.maintain()
    return {"created": [str(d) for d in created], "dropped": [str(d) for d in dropped]}
