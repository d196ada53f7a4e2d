"""Celery tasks of the firmware app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

import logging
from datetime import datetime

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
def rollouts_tick(at: str | None = None) -> dict:
    """One tick of the rollout engine (firmware/rollouts/engine.py): waves as jobs, the failure
    policy, soaks and gates. Each rollout is taken with SKIP LOCKED, like the jobs tick.

    `at` (ISO 8601 with a zone) is the time the tick reads as now; beat sends none. It lets the
    end-to-end tests move a real worker past soaks, deadlines and health windows in seconds."""
    from firmware.rollouts import engine as rollouts_engine

    report = rollouts_engine.tick(tick_time(at))
    if any(report.values()):
        log.info("Rollouts: %s.", report)
    return report


def tick_time(at: str | None) -> datetime | None:
    """`at` as an aware datetime (None stays None: the engine reads the clock). A naive time is
    refused rather than guessed: the worker's zone and the sender's may differ."""
    if at is None:
        return None
    if not isinstance(at, str) or len(at) > 64:
        raise ValueError(f"at: an ISO 8601 time with a zone is expected, not {str(at)[:64]!r}.")
    try:
        if not (at.isascii() and at.isprintable()):  # fromisoformat lets some through (NUL)
            raise ValueError
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise ValueError(f"at: {at!r} is not an ISO 8601 time.") from None
    if moment.tzinfo is None:
        raise ValueError(f"at: {at!r} has no zone (add +00:00 or Z).")
    return moment
