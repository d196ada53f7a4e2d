"""What the rollout page shows, read in a fixed number of queries whatever the fleet's size:
the rollout, its waves with counts per outcome (one GROUP BY served by rollout_device_wave_idx),
the current wave's failure rate against the threshold, the health comparison (cached briefly:
it aggregates every device of the rollout), the first page of failing devices with their
executions' statusDetails, the timeline, the dry run before the start, and the actions the
rollout's state and the user's role allow."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count

from firmware.models import JobExecution
from firmware.rollouts import engine, health, outcomes
from firmware.rollouts import preview as dry_run
from firmware.rollouts.choices import DeviceOutcome, RolloutStatus, WaveStatus
from firmware.rollouts.models import Rollout, RolloutDevice, RolloutEvent, Wave

FAILING_PAGE = 20
TIMELINE = 50  # newest events shown; the REST detail has them all
# The comparison counts every device of the rollout (0.6 s at 100,000): a page refreshed live
# reads it at most this often per rollout and process.
COMPARISON_SECONDS = 15
RUN, APPROVE = "firmware.run_rollout", "firmware.approve_rollout"
BEFORE_START = (RolloutStatus.DRAFT, RolloutStatus.AWAITING_APPROVAL)


@dataclass
class WaveRow:
    wave: Wave
    counts: dict[str, int]  # outcome -> devices
    bars: list[tuple[str, str, float]]  # (outcome, label, percent of the wave) for the bar

    @property
    def legend(self) -> list[tuple[str, str, int]]:
        return [(o, o.replace("_", " "), n) for o, n in self.counts.items()]


def waves(rollout: Rollout) -> list[WaveRow]:
    rows = RolloutDevice.objects.filter(rollout=rollout).values("wave_id", "outcome")
    counts = {(r["wave_id"], r["outcome"]): r["n"] for r in rows.annotate(n=Count("pk"))}
    result = []
    for wave in rollout.waves.all():
        per = {o: counts.get((wave.pk, o), 0) for o in DeviceOutcome.values}
        total = sum(per.values()) or 1
        bars = [(o, DeviceOutcome(o).label, 100 * n / total) for o, n in per.items() if n]
        result.append(WaveRow(wave, per, bars))
    return result


def current(rows: list[WaveRow]) -> WaveRow | None:
    """The wave the failure policy is judging: the first neither passed nor canceled."""
    live = (WaveStatus.PASSED, WaveStatus.CANCELED)
    return next((row for row in rows if row.wave.status not in live), None)


def failure_rate(rollout: Rollout, row: WaveRow | None) -> dict[str, Any] | None:
    """The current wave's failures (of the kinds that count) over its finished devices, beside
    the threshold; `armed` once the minimum number of finished devices is reached."""
    if row is None:
        return None
    tally = outcomes.counts(row.wave)  # the engine's own tally: the page agrees with it
    finished = outcomes.finished(tally)
    kinds = set(rollout.failure_kinds)
    failures = sum(n for (o, f), n in tally.items() if o == DeviceOutcome.FAILED and f in kinds)
    return {
        "wave": row.wave.number,
        "failures": failures,
        "finished": finished,
        "percent": round(100 * failures / finished, 1) if finished else None,
        "threshold_count": rollout.failure_threshold_count,
        "threshold_percent": rollout.failure_threshold_percent,
        "min_finished": rollout.failure_min_finished,
        "armed": finished >= max(rollout.failure_min_finished, 1),
        "crossed": engine.crossed(rollout, tally) is not None,
    }


def comparison(rollout: Rollout, now: datetime) -> health.Comparison:
    key = f"rollout-page:comparison:{rollout.pk}"
    found = cache.get(key)
    if found is None:
        found = health.compare(rollout, now)
        cache.set(key, found, COMPARISON_SECONDS)
    return found


def failing(rollout: Rollout) -> list[dict[str, Any]]:
    """The newest failures (rollout_device_failed_idx) with their last execution's details."""
    rows = list(
        RolloutDevice.objects.filter(rollout=rollout, outcome=DeviceOutcome.FAILED)
        .select_related("device", "wave")
        .order_by("-finished_at", "pk")[:FAILING_PAGE]
    )
    executions = JobExecution.objects.filter(
        job_id__in={row.wave.job_id for row in rows if row.wave.job_id},
        device_id__in=[row.device_id for row in rows],
    ).order_by("execution_number")
    # Keyed by (job, device); the last attempt wins.
    details: dict[tuple[int | None, Any], dict] = {
        (e.job_id, e.device_id): e.status_details for e in executions
    }
    return [
        {"entry": row, "status_details": details.get((row.wave.job_id, row.device_id)) or {}}
        for row in rows
    ]


def timeline(rollout: Rollout) -> list[RolloutEvent]:
    return list(rollout.events.order_by("-at", "-pk")[:TIMELINE])


def actions(rollout: Rollout, row: WaveRow | None, user, actor: str) -> set[str]:
    """The buttons shown: the state allows the action AND the user's role may take it."""
    may_run, may_approve = user.has_perm(RUN), user.has_perm(APPROVE)
    status = rollout.status
    shown = set()
    if may_run:
        if status == RolloutStatus.DRAFT:
            shown.add("start")
        if status == RolloutStatus.RUNNING:
            shown.add("pause")
        if status == RolloutStatus.PAUSED:
            shown.add("resume")
        if status in (RolloutStatus.RUNNING, RolloutStatus.PAUSED):
            shown.add("abort")
        if status in (*BEFORE_START, RolloutStatus.SCHEDULED):
            shown.add("cancel")
    creator = actor == rollout.created_by
    if may_approve and status == RolloutStatus.AWAITING_APPROVAL and not creator:
        shown.add("approve")
    gate_open = row is not None and row.wave.status == WaveStatus.AWAITING_APPROVAL
    live = status in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)
    # The same rule as control.approve_gate: not the creator of a rollout needing approval.
    if may_approve and gate_open and live and not (rollout.approval_required and creator):
        shown.add("approve_gate")
    return shown


def context(rollout: Rollout, user, actor: str, now: datetime) -> dict[str, Any]:
    rows = waves(rollout)
    row = current(rows)
    started = rollout.status not in BEFORE_START
    return {
        "rollout": rollout,
        "waves": rows,
        "current_wave": row,
        "failure_rate": failure_rate(rollout, row) if started else None,
        "comparison": comparison(rollout, now) if started else None,
        "failing": failing(rollout) if started else [],
        "events": timeline(rollout),
        "preview": None if started else dry_run.preview(rollout, now=now),
        "actions": actions(rollout, row, user, actor),
    }
