"""The fleet summary's figures, each from one set-based query (issue 14 point 5).

`counts(now)` is the expensive part — every device is read once, grouped by status, presence,
type and firmware version — so beat runs it (monitoring.summary.services.refresh) and the page
reads the stored result. `latest(now)` is what the page reads fresh on every request: a few
rows through an index each, whatever the fleet's size.
"""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import BooleanField, Case, CharField, Count, Q, Value, When
from django.urls import NoReverseMatch, reverse

from devices import lifecycle
from devices.choices import DeviceStatus
from devices.credentials import expiring
from devices.models import Device, DeviceEvent
from firmware.models import Job
from firmware.rollouts.choices import ACTIVE_STATUSES, FINAL_OUTCOMES, DeviceOutcome
from firmware.rollouts.models import Rollout, RolloutDevice
from monitoring.models import Alert, OnlineSample
from shadows.configuration.services import drifted_devices

SEVERITIES = ("critical", "warning", "info")
PRESENCE = ("online", "offline", "never_connected")
ACTIVE_JOB_STATUSES = ("IN_PROGRESS", "SCHEDULED")
# Versions listed per device type, most devices first; the rest are summed as "other".
VERSIONS_PER_TYPE = 10
LATEST = 10
CERTIFICATE_WINDOWS = (7, 30)
# Active rollouts shown with their progress on the dashboard, newest first.
ROLLOUTS_SHOWN = 10


def counts(now: datetime) -> dict[str, Any]:
    """Every count of the summary (about 1 s at a million devices: beat's work, not a page's)."""
    return {
        **_devices(),
        "certificates": _certificates(now),
        "configuration": {"drifting_devices": drifted_devices(now=now).count()},
        "alerts": _open_alerts(),
        "jobs": _grouped(Job.objects.filter(status__in=ACTIVE_JOB_STATUSES), ACTIVE_JOB_STATUSES),
        "rollouts": _grouped(
            Rollout.objects.filter(status__in=ACTIVE_STATUSES), [s.value for s in ACTIVE_STATUSES]
        ),
        "active_rollouts": _active_rollouts(),
    }


def _devices() -> dict[str, Any]:
    """Status, presence and firmware in one pass over the devices (a LEFT JOIN on presence)."""
    presence = Case(
        When(presence__isnull=True, then=Value("never_connected")),
        When(presence__online=True, then=Value("online")),
        default=Value("offline"),
        output_field=CharField(),
    )
    in_service = Case(
        When(status__in=lifecycle.TERMINAL, then=Value(False)),
        default=Value(True),
        output_field=BooleanField(),
    )
    rows = (
        Device.objects.order_by()
        .values("status", "device_type", "firmware_version")
        .annotate(presence_state=presence, serving=in_service, n=Count("pk"))
    )
    by_status = dict.fromkeys(DeviceStatus.values, 0)
    by_presence = dict.fromkeys(PRESENCE, 0)
    versions: dict[str, dict[str, int]] = {}
    for row in rows:
        n = row["n"]
        by_status[row["status"]] += n
        if not row["serving"]:
            continue  # a decommissioned device is neither offline nor part of the firmware mix
        by_presence[row["presence_state"]] += n
        of_type = versions.setdefault(row["device_type"], {})
        of_type[row["firmware_version"]] = of_type.get(row["firmware_version"], 0) + n
    return {
        "devices": {"total": sum(by_status.values()), "by_status": by_status},
        "presence": {**by_presence, "in_service": sum(by_presence.values())},
        "firmware": [_versions(t, versions[t]) for t in sorted(versions)],
    }


def _versions(device_type: str, counts: dict[str, int]) -> dict[str, Any]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = [{"version": v, "devices": n} for v, n in ranked[:VERSIONS_PER_TYPE]]
    return {
        "device_type": device_type,
        "devices": sum(counts.values()),
        "versions": shown,
        "other": sum(n for _, n in ranked[VERSIONS_PER_TYPE:]),
    }


def _certificates(now: datetime) -> dict[str, int]:
    """Live certificates expiring within 7 and 30 days (the expiry index, one query)."""
    windows = {
        f"expiring_{days}_days": Count("pk", filter=Q(expires_at__lte=now + timedelta(days=days)))
        for days in CERTIFICATE_WINDOWS
    }
    return expiring(max(CERTIFICATE_WINDOWS), at=now).aggregate(**windows)


def _open_alerts() -> dict[str, Any]:
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    by_severity = _grouped(open_alerts.values("severity"), SEVERITIES, field="severity")
    return {"open": sum(by_severity.values()), "by_severity": by_severity}


def _active_rollouts() -> list[dict[str, Any]]:
    """The newest active rollouts with their devices by outcome: one GROUP BY over their
    devices (the (rollout, device) unique index) — beat's work, a rollout may hold a million."""
    rollouts = list(
        Rollout.objects.filter(status__in=ACTIVE_STATUSES)
        .order_by("-created_at")
        .values("pk", "rollout_id", "status")[:ROLLOUTS_SHOWN]
    )
    tally = (
        RolloutDevice.objects.filter(rollout__in=[r["pk"] for r in rollouts])
        .order_by()
        .values_list("rollout", "outcome")
        .annotate(n=Count("pk"))
    )
    progress = {r["pk"]: {"devices": 0, "finished": 0, "updated": 0, "failed": 0} for r in rollouts}
    for rollout, outcome, n in tally:
        counted = progress[rollout]
        counted["devices"] += n
        counted["finished"] += n if outcome in FINAL_OUTCOMES else 0
        counted["updated"] += n if outcome == DeviceOutcome.UPDATED else 0
        counted["failed"] += n if outcome == DeviceOutcome.FAILED else 0
    return [
        {"rollout_id": r["rollout_id"], "status": r["status"], **progress[r["pk"]]}
        for r in rollouts
    ]


def _grouped(queryset, keys, field: str = "status") -> dict[str, int]:
    """Rows counted per value of `field`, every expected key present (0 when none)."""
    found = dict(queryset.order_by().values_list(field).annotate(n=Count("pk")))
    return {key: found.get(key, 0) for key in keys}


# --- what the page reads on every request ------------------------------------------------------


def latest(now: datetime) -> dict[str, Any]:
    """The 24 h online ratio and the newest events and open alerts: three index reads."""
    return {
        "online_ratio_24h": online_ratio(now),
        "latest_events": [
            {
                "device_id": e.device.device_id,
                "device_pk": str(e.device.pk),
                "event_type": e.event_type,
                "actor": e.actor,
                "created_at": e.created_at,
            }
            for e in DeviceEvent.objects.select_related("device").order_by("-created_at")[:LATEST]
        ],
        "latest_alerts": [
            {
                "id": a.pk,
                "rule": a.rule.name,
                "device_id": a.device.device_id,
                "device_pk": str(a.device.pk),
                "severity": a.severity,
                "raised_at": a.raised_at,
                "acknowledged": a.acknowledged_at is not None,
            }
            for a in Alert.objects.filter(resolved_at__isnull=True)
            .select_related("rule", "device")
            .order_by("-raised_at")[:LATEST]
        ],
    }


def online_ratio(now: datetime) -> dict[str, Any]:
    """The share of in-service devices online, per sample over the last 24 h, and its mean."""
    samples = OnlineSample.objects.filter(sampled_at__gt=now - timedelta(hours=24)).order_by(
        "sampled_at"
    )
    points = [
        {"at": s.sampled_at, "ratio": round(s.online / s.in_service, 4) if s.in_service else 0.0}
        for s in samples
    ]
    average = round(sum(p["ratio"] for p in points) / len(points), 4) if points else None
    return {"average": average, "samples": points}


# --- where each figure leads (the admin's filtered lists) ------------------------------------


def admin_link(name: str, **query: str) -> str:
    """The admin URL `name` with `query`, or "" when that list does not exist (a part not
    installed) — the page then shows the figure without a link."""
    try:
        url = reverse(name)
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(query)}" if query else url


def admin_link_to(name: str, key: str) -> str:
    """The admin page `name` of one object (its key in the URL), or "" when not installed."""
    try:
        return reverse(name, args=[key])
    except NoReverseMatch:
        return ""
