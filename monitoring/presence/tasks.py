"""Celery tasks of monitoring's presence part (beat: settings "presence-sweep")."""

import logging

from celery import shared_task
from django.db import transaction

from monitoring.presence.sweep import sweep_heartbeats as sweep

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sweep_heartbeats() -> int:
    with transaction.atomic():
        swept = sweep()
    if swept:
        log.info("presence: %d devices missed their heartbeat", len(swept))
    return len(swept)
