"""Long jobs that outlive their worker: one rule for bulk provisioning now, rollouts later.

A long job keeps its progress in its own row and beats a heartbeat there at every step; each
step is idempotent (it locks the row and continues from the recorded progress). A worker killed
mid-job leaves a running row whose heartbeat stops, and its task message sits unacknowledged in
Redis until the visibility timeout (an hour). So the sweep (Celery beat, every
JOB_SWEEP_SECONDS, and each worker as it starts) claims every running job whose heartbeat is
older than JOB_STALL_SECONDS and queues its task again. A job resumed twice — the sweep's task
and, an hour later, the redelivered original — is safe: the late one finds it finished.

Apps register their job kinds in AppConfig.ready (fleetportal imports no app).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    """How to find and restart one kind of long job.

    `claim_stalled(cutoff)` returns the ids of running jobs whose heartbeat is older than the
    cutoff, refreshing their heartbeat in the same statement (so two sweeps never both resume
    one job); `resume(id)` queues the job's task again.
    """

    name: str
    claim_stalled: Callable[[datetime], list[str]]
    resume: Callable[[str], None]


def claim_stalled_rows(model, cutoff: datetime) -> list[str]:
    """A JobKind's claim for a job model with `status` ("running") and `heartbeat_at` columns:
    the stalled rows' ids, their heartbeat refreshed in the same UPDATE so that two sweeps never
    both resume one job."""
    connection = connections[model._default_manager.db]
    table = connection.ops.quote_name(model._meta.db_table)  # from model metadata, not input
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET heartbeat_at = now()"  # noqa: S608
            " WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < %s)"
            " RETURNING id",
            [cutoff],
        )
        return [str(job_id) for (job_id,) in cursor.fetchall()]


_kinds: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    if kind.name in _kinds and _kinds[kind.name] != kind:
        raise ValueError(f"A resumable job kind named {kind.name!r} is already registered.")
    _kinds[kind.name] = kind


def resume_stalled(now: datetime | None = None) -> dict[str, int]:
    """Queue again every job whose worker went quiet; returns how many per kind."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.JOB_STALL_SECONDS)
    resumed = {}
    for kind in _kinds.values():
        ids = kind.claim_stalled(cutoff)
        for job_id in ids:
            kind.resume(job_id)
        if ids:
            log.warning("Resumed %d stalled %s job(s): %s", len(ids), kind.name, ", ".join(ids))
        resumed[kind.name] = len(ids)
    return resumed
