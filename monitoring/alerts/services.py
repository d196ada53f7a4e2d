"""Operators' actions on alerts: acknowledging. (Raising and resolving belong to evaluation.py.)

An acknowledgement records who took the alert on and when; the alert stays open until its
condition stops holding. Acknowledging one twice keeps the first acknowledgement; a resolved
alert can no longer be acknowledged (there is nothing left to take on).
"""

import datetime
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from fleetportal.errors import DomainError
from monitoring.alerts import live_events
from monitoring.models import Alert


class AlertAlreadyResolved(DomainError):
    field = "alert"
    code = "resolved"
    http_status = 409


def acknowledge(alert: Alert, actor: str, now: datetime.datetime | None = None) -> Alert:
    """Acknowledges one alert; returns it as it now is. Raises AlertAlreadyResolved."""
    if acknowledge_many([alert.pk], actor, now) == 0:
        alert.refresh_from_db()
        if alert.acknowledged_at is None:
            raise AlertAlreadyResolved(f"The alert was resolved at {alert.resolved_at}.")
        return alert
    alert.refresh_from_db()
    return alert


def acknowledge_many(
    alert_pks: Iterable[int], actor: str, now: datetime.datetime | None = None
) -> int:
    """Acknowledges the open, unacknowledged ones among `alert_pks` in one UPDATE; their count.

    The condition in the UPDATE makes a concurrent acknowledgement or resolution safe: whoever
    comes second changes nothing."""
    with transaction.atomic():
        count = Alert.objects.filter(
            pk__in=list(alert_pks), resolved_at__isnull=True, acknowledged_at__isnull=True
        ).update(acknowledged_at=now or timezone.now(), acknowledged_by=actor)
        if count:
            live_events.alerts_changed(acknowledged=count)
    return count
