"""Where each device of a wave stands, read from its wave job's executions in one statement.

A device's latest attempt (highest executionNumber; a retry supersedes the one before) decides:
QUEUED → notified, IN_PROGRESS → in_progress, SUCCEEDED once confirmed (the device reports the
new version) → reported (health.verify then makes it updated or failed UNHEALTHY), SUCCEEDED
not yet confirmed → still in_progress, FAILED → failed FAILED (NOT_CONFIRMED when the engine
failed it for keeping the old version), REJECTED / TIMED_OUT → failed with that failure,
CANCELED with reason not_started → failed NOT_STARTED, other CANCELED / REMOVED → canceled.
Retries used are the attempts after the first, less those an operator forgave
(JobTarget.retry_offset, control.reset_retries).
A FAILED or TIMED_OUT attempt whose retry the jobs engine has not decided yet stays
in_progress, unless `settled` (the wave's job is over: no retry will come)."""

from collections import Counter
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count

from firmware.choices import ExecutionStatus as E
from firmware.engine import NOT_STARTED
from firmware.models import JobExecution, JobTarget
from firmware.rollouts.choices import FINAL_OUTCOMES, DeviceOutcome, Failure
from firmware.rollouts.models import RolloutDevice, Wave

# Outcomes the executions still move; reported and final ones are not touched again here.
FOLLOWED = (DeviceOutcome.ASSIGNED, DeviceOutcome.NOTIFIED, DeviceOutcome.IN_PROGRESS)

_FOLLOW = f"""
UPDATE {RolloutDevice._meta.db_table} rd
SET outcome = x.outcome, failure = x.failure, reason = x.reason, retries_used = x.retries,
    reported_at = x.confirmed_at,
    finished_at = CASE WHEN x.outcome IN (%(failed)s, %(canceled)s) THEN %(now)s END
FROM (
    SELECT device_id, retries, confirmed_at, outcome,
        CASE WHEN outcome <> %(failed)s THEN ''
             WHEN status = %(e_failed)s AND confirmation_deadline IS NOT NULL
                 THEN %(not_confirmed)s
             WHEN status = %(e_canceled)s THEN %(not_started)s
             ELSE status END AS failure,
        CASE WHEN outcome IN (%(failed)s, %(canceled)s)
             THEN left(COALESCE(status_details->>'reason', ''), 500) ELSE '' END AS reason
    FROM (
        SELECT DISTINCT ON (e.device_id) e.device_id, e.status, e.status_details,
            e.confirmation_deadline, e.confirmed_at,
            greatest(e.execution_number - 1 - t.retry_offset, 0) AS retries,
            CASE WHEN e.status = %(e_queued)s THEN %(notified)s
                 WHEN e.status = %(e_succeeded)s AND e.confirmed_at IS NOT NULL THEN %(reported)s
                 WHEN e.status IN (%(e_failed)s, %(e_timed_out)s)
                      AND e.followed_up_at IS NULL AND NOT %(settled)s THEN %(in_progress)s
                 WHEN e.status IN (%(e_failed)s, %(e_timed_out)s, %(e_rejected)s) THEN %(failed)s
                 WHEN e.status = %(e_canceled)s AND e.status_details->>'reason' = %(reason)s
                      THEN %(failed)s
                 WHEN e.status IN (%(e_canceled)s, %(e_removed)s) THEN %(canceled)s
                 ELSE %(in_progress)s END AS outcome
        FROM {JobExecution._meta.db_table} e
        JOIN {JobTarget._meta.db_table} t ON t.job_id = e.job_id AND t.device_id = e.device_id
        WHERE e.job_id = %(job)s
        ORDER BY e.device_id, e.execution_number DESC
    ) latest
) x
WHERE rd.wave_id = %(wave)s AND rd.device_id = x.device_id
  AND rd.outcome IN (%(assigned)s, %(notified)s, %(in_progress)s)
  AND (rd.outcome, rd.retries_used) IS DISTINCT FROM (x.outcome, x.retries)
"""  # noqa: S608  (table names from the models; values are parameters)


def follow(wave: Wave, now: datetime, *, settled: bool = False) -> int:
    """Bring the wave's devices up to date with their executions; returns how many changed."""
    if wave.job_id is None:
        return 0
    parameters: dict[str, Any] = {
        "job": wave.job_id,
        "wave": wave.pk,
        "now": now,
        "settled": settled,
        "reason": NOT_STARTED,
        "not_confirmed": Failure.NOT_CONFIRMED.value,
        "not_started": Failure.NOT_STARTED.value,
        **{outcome.name.lower(): outcome.value for outcome in DeviceOutcome},
        **{f"e_{status.name.lower()}": status.value for status in E},
    }
    with connection.cursor() as cursor:
        cursor.execute(_FOLLOW, parameters)
        return cursor.rowcount


def counts(wave: Wave) -> Counter[tuple[str, str]]:
    """(outcome, failure) → devices of the wave, in one GROUP BY."""
    rows = (
        RolloutDevice.objects.filter(wave=wave)
        .values_list("outcome", "failure")
        .order_by()
        .annotate(n=Count("pk"))
    )
    return Counter({(outcome, failure): n for outcome, failure, n in rows})


def finished(tally: Counter[tuple[str, str]]) -> int:
    return sum(n for (outcome, _), n in tally.items() if outcome in FINAL_OUTCOMES)


def unfinished(tally: Counter[tuple[str, str]], *, reported: bool = True) -> int:
    """Devices not final; without `reported`, those still verified by health are left out."""
    waiting = FOLLOWED + ((DeviceOutcome.REPORTED,) if reported else ())
    return sum(n for (outcome, _), n in tally.items() if outcome in waiting)
