"""Logging filters for the console `make run` and the production units write to."""

import logging

from django.conf import settings


class ClientErrorsWithoutTraceback(logging.Filter):
    """Keep Django's one-line record of a 4xx answer but drop its traceback.

    Django logs a refused request (403 PermissionDenied, 400 SuspiciousOperation) with the
    exception attached, so every ordinary "permission denied" printed a traceback as if the
    portal had crashed. Server errors (5xx) keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


# Where Celery logs its own line for every task: beat sending it, the worker receiving it, its
# success with the return value.
CELERY_TASK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


class QuietPeriodicTasks(logging.Filter):
    """Celery's INFO lines about the periodic tasks named in settings.QUIET_TASKS become DEBUG.

    Beat runs the jobs engine's tick and the stalled-job sweep every 5 s; three lines each made
    `make run`'s console unreadable. Those tasks log their own line when they changed something
    (firmware.tasks.tick, fleetportal.resumable). Errors and retries keep their level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_name(record) not in settings.QUIET_TASKS:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _task_name(record: logging.LogRecord) -> str | None:
    data = getattr(record, "data", None)  # the worker's lines carry the task in `data`
    if isinstance(data, dict):
        return data.get("name")
    if record.name == "celery.beat" and isinstance(record.args, tuple) and len(record.args) == 2:
        return str(record.args[1])  # "Scheduler: Sending due task %s (%s)", entry, task
    return None


def quiet_periodic_tasks() -> None:
    """Install QuietPeriodicTasks on Celery's loggers (each Celery process, at start)."""
    for name in CELERY_TASK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietPeriodicTasks) for f in logger.filters):
            logger.addFilter(QuietPeriodicTasks())
