"""Celery tasks of the firmware app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

import logging

from celery import shared_task

from firmware import engine

log = logging.getLogger(__name__)


@shared_task
def tick() -> dict:
    """One tick of the jobs engine (firmware/engine.py). Safe to run twice at once: each job
    is taken with SKIP LOCKED, and a tick killed half-way leaves its work to the next one."""
    report = engine.tick()
    if report.released or report.timed_out or report.aborted or report.completed:
        log.info("Jobs engine: %s", report)
    return vars(report)
