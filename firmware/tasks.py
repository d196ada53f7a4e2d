"""Celery tasks of the firmware app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

import logging

from celery import shared_task

from firmware import engine

log = logging.getLogger(__name__)

# What a tick did, as the console says it (engine.Report's fields, in this order).
COUNTS = (
    ("started", "started {} scheduled job(s)"),
    ("released", "released {} execution(s)"),
    ("timed_out", "timed out {}"),
    ("not_started", "cancelled {} not started in time"),
    ("retried", "queued {} retry(ies)"),
    ("confirmed", "confirmed {} firmware success(es)"),
    ("unconfirmed", "failed {} unconfirmed firmware success(es)"),
    ("removed", "removed {}"),
)
NAMES = (
    ("aborted", "aborted {}"),
    ("canceled", "cancelled at their end time {}"),
    ("completed", "completed {}"),
)


def changes(report: engine.Report) -> str:
    """What the tick changed, in one line; empty when it changed nothing."""
    said = [text.format(getattr(report, name)) for name, text in COUNTS if getattr(report, name)]
    said += [
        text.format(", ".join(getattr(report, name)))
        for name, text in NAMES
        if getattr(report, name)
    ]
    return "; ".join(said)


@shared_task
def tick() -> dict:
    """One tick of the jobs engine (firmware/engine.py). Safe to run twice at once: each job
    is taken with SKIP LOCKED, and a tick killed half-way leaves its work to the next one.
    Every 5 s: one INFO line when it changed something, DEBUG otherwise (Celery's own lines
    about it are DEBUG too, settings.QUIET_TASKS)."""
    report = engine.tick()
    if said := changes(report):
        log.info("Jobs engine: %s.", said)
    else:
        log.debug("Jobs engine: nothing to do.")
    return vars(report)


@shared_task
def rollouts_tick() -> dict:
    """One tick of the rollout engine (firmware/rollouts/engine.py): waves as jobs, the failure
    policy, soaks and gates. Each rollout is taken with SKIP LOCKED, like the jobs tick."""
    from firmware.rollouts import engine as rollouts_engine

    report = rollouts_engine.tick()
    if any(report.values()):
        log.info("Rollouts: %s.", report)
    return report
