"""Verified success: a device whose new firmware was confirmed (outcome REPORTED) counts as
UPDATED only once it was back online after reporting and its health bounds held for the soak.
And the promotion comparison: updated devices against those not yet updated.

verify(wave, now) — called by the rollout tick every few seconds — for the wave's REPORTED
devices, in a fixed number of statements whatever their number:
1. Bounds: a device not matching the rollout's health_bounds now fails (UNHEALTHY), the
   reason naming the bound and the value seen. Checked at every call while the device is
   REPORTED, i.e. from reported_at until its soak ends, so the first violation seen fails it.
2. Presence: a device not seen (bounds.seen_since) after reported_at once
   health_online_minutes have passed fails (UNHEALTHY). The confirming report itself does not
   count: this catches firmware that boots, reports its version, then dies or drops off.
   "Passed" allows for the record's lag (fleetportal.bridge.record): the minutes count up to
   the receive time the slowest consumer of device messages has committed. A bridge that falls
   behind (a mass reboot's burst) or stops has not yet recorded the device's later messages
   either, so absence waits for it instead of failing devices that are talking; with no
   consumer reporting, absence is not judged.
3. A device whose soak has ended, seen since reporting, with bounds held → UPDATED.
A device's soak ends at reported_at + wave.soak_minutes, or at wave.soak_until when the engine
has set it and it is later (the wave's soak extends its devices' checks, never shortens them).

compare(rollout, now): see its docstring.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, Greatest, Left

from devices.models import Device
from firmware.rollouts import bounds as health_bounds
from firmware.rollouts.choices import DeviceOutcome, Failure
from firmware.rollouts.models import Rollout, RolloutDevice, Wave
from fleetportal.bridge import record

REASON_LENGTH = 500  # RolloutDevice.reason
# Fewer devices than this on either side: percentages move by 5+ points per device, so no
# comparison is made (not worse, and the reason says so).
MIN_COMPARED = 20


def verify(wave: Wave, now: datetime) -> None:
    """Settle the wave's REPORTED devices: UNHEALTHY on a broken bound or absence, else UPDATED
    once the soak is over (three conditional UPDATEs, whatever the number of devices)."""
    rollout = wave.rollout
    reported = RolloutDevice.objects.filter(wave=wave, outcome=DeviceOutcome.REPORTED)
    if rollout.health_bounds:
        bounds = health_bounds.condition(rollout.health_bounds)
        devices = health_bounds.with_reported(Device.objects.all())
        # Only the wave's reported devices are read (a hash semi-join), not the fleet.
        failing = devices.filter(
            rollout_entries__wave=wave, rollout_entries__outcome=DeviceOutcome.REPORTED
        ).exclude(bounds)
        reason = health_bounds.failure_reason(rollout.health_bounds)
        reported.filter(device__in=failing.values("pk")).update(
            **_failed(now, _first(devices.filter(pk=OuterRef("device_id")), reason))
        )
    limit = rollout.health_online_minutes
    recorded_until = record.reaches(now)
    if recorded_until is not None:
        reported.filter(
            ~health_bounds.seen_since(F("reported_at")),
            reported_at__lte=recorded_until - timedelta(minutes=limit),
        ).update(**_failed(now, _absence_reason(limit)))
    soak_end = Greatest(
        ExpressionWrapper(
            F("reported_at") + timedelta(minutes=wave.soak_minutes), output_field=DateTimeField()
        ),
        Value(wave.soak_until, output_field=DateTimeField()),
    )
    reported.alias(soak_end=soak_end).filter(
        health_bounds.seen_since(F("reported_at")), soak_end__lte=now
    ).update(outcome=DeviceOutcome.UPDATED, finished_at=now)


def _failed(now: datetime, reason) -> dict:
    return {
        "outcome": DeviceOutcome.FAILED,
        "failure": Failure.UNHEALTHY,
        "reason": Left(reason, REASON_LENGTH),
        "finished_at": now,
    }


def _first(devices, expression) -> Subquery:
    return Subquery(devices.annotate(text=expression).values("text")[:1])


def _absence_reason(minutes: int) -> Subquery:
    at_utc = Func(F("last_seen"), template="(%(expressions)s AT TIME ZONE 'UTC')")
    last_seen = Func(
        at_utc, Value('YYYY-MM-DD HH24:MI:SS "UTC"'), function="to_char", output_field=TextField()
    )
    text = Concat(
        Value(f"not back online within {minutes} min of reporting the new version (last seen "),
        Coalesce(last_seen, Value("never"), output_field=TextField()),
        Value(")"),
        output_field=TextField(),
    )
    return _first(Device.objects.filter(pk=OuterRef("device_id")), text)


# -- promotion comparison ---------------------------------------------------------------------


@dataclass
class Comparison:
    """Updated devices against devices not yet updated: each side's device count, online
    percentage and each bound's pass percentage; worse when the updated side trails by more
    than the rollout's promotion margin on any of them."""

    updated: dict
    others: dict
    worse: bool
    reasons: list[str] = field(default_factory=list)


# The updated side: devices running the new version — being verified, verified, or failed by
# the health check (leaving those out would compare only the survivors).
UPDATED_SIDE = Q(rollout_entries__outcome__in=[DeviceOutcome.REPORTED, DeviceOutcome.UPDATED]) | Q(
    rollout_entries__outcome=DeviceOutcome.FAILED, rollout_entries__failure=Failure.UNHEALTHY
)
# The others: devices of the rollout still on the old version and untouched by it (not yet
# released, or notified and not started). In progress, failed otherwise or canceled devices are
# in neither: a device rebooting mid-update is not a fair baseline for "online".
OTHERS_SIDE = Q(rollout_entries__outcome__in=[DeviceOutcome.ASSIGNED, DeviceOutcome.NOTIFIED])
OTHERS_NAME = "devices not yet updated"


def compare(rollout: Rollout, now: datetime) -> Comparison:
    """The updated devices against those not yet updated (one aggregate query, both sides).

    Metrics: "online" (seen within the online window at `now`) and, when the rollout has
    health bounds, each leaf's pass rate plus, for an all/any tree, the whole document's
    ("all bounds"). worse = on any metric the updated side is below the others by more than
    promotion_margin_percent points. With fewer than MIN_COMPARED devices on either side no
    comparison is made: not worse, and the reason says so."""
    metrics = _metrics(rollout, now)
    side = Case(When(UPDATED_SIDE, then=Value("u")), When(OTHERS_SIDE, then=Value("o")))
    devices = health_bounds.with_reported(
        Device.objects.filter(rollout_entries__rollout=rollout).annotate(side=side)
    )
    # Grouped by side, so each condition is evaluated once per device. Aliases by position:
    # metric names hold spaces and dots, which SQL aliases may not.
    rows = (
        devices.exclude(side=None)
        .values("side")
        .annotate(
            devices=Count("pk"),
            **{f"m{i}": Count("pk", filter=c) for i, c in enumerate(metrics.values())},
        )
    )
    counts = {row["side"]: row for row in rows}
    updated = _side(counts.get("u"), metrics)
    others = _side(counts.get("o"), metrics)
    return _judge(updated, others, float(rollout.promotion_margin_percent))


def _metrics(rollout: Rollout, now: datetime) -> dict[str, Q]:
    metrics = {"online": Q(last_seen__gte=health_bounds.online_since(now))}
    document = rollout.health_bounds
    if document:
        leaves = health_bounds.leaves(document)
        if len(leaves) > 1 or "not" in document:
            metrics["all bounds"] = health_bounds.condition(document)
        metrics.update({leaf.label: leaf.holds for leaf in leaves})
    return metrics


def _side(row: dict | None, metrics: dict) -> dict:
    devices = row["devices"] if row else 0
    percents = {
        name: round(100 * row[f"m{i}"] / devices, 1) if row else None
        for i, name in enumerate(metrics)
    }
    return {"devices": devices, "percent": percents}


def _judge(updated: dict, others: dict, margin: float) -> Comparison:
    if min(updated["devices"], others["devices"]) < MIN_COMPARED:
        reason = (
            f"no comparison: {updated['devices']} updated and {others['devices']} "
            f"{OTHERS_NAME}; at least {MIN_COMPARED} on each side are needed"
        )
        return Comparison(updated, others, False, [reason])
    reasons = []
    for name, ours in updated["percent"].items():
        theirs = others["percent"][name]
        if theirs - ours > margin:
            what = "online" if name == "online" else f"{name} held on"
            reasons.append(
                f"{what} {ours:g} % vs {theirs:g} % for {OTHERS_NAME} (margin {margin:g} points)"
            )
    return Comparison(updated, others, bool(reasons), reasons)
