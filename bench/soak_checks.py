"""The soak's integrity checks, each a Check(name, expected, found, passed, problems).

- shadows: every shadow's history holds versions 1..n without a gap (n = the shadow's version);
- jobs: every execution's status matches what its device last sent for that job, by the
  simulator's own record (MATCHES below), and no device reported a job the portal lacks;
- outbox: no row older than a minute;
- alerts: no alert open for a device the profile left healthy.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from firmware.choices import ExecutionStatus as S

EXAMPLES = 5

# The last status a device sent for a job -> the statuses the portal's latest attempt may have.
MATCHES = {
    None: {S.QUEUED, S.CANCELED, S.REMOVED},  # never started it (never_start, or not yet)
    S.IN_PROGRESS: {S.IN_PROGRESS, S.TIMED_OUT, S.CANCELED},  # went silent, or still running
    S.SUCCEEDED: {S.SUCCEEDED},
    S.FAILED: {S.FAILED},
    S.REJECTED: {S.REJECTED},
}
# A device that booted its old version reported SUCCEEDED; the engine fails it unconfirmed.
BOOTED_OLD = "boot_old_version"
# Faults that leave a device unhealthy or away: alerts for them are expected.
UNHEALTHY_FAULTS = {"unhealthy_after_update", "silent_mid_update", "offline_and_return"}


@dataclass
class Check:
    name: str
    expected: str
    found: str
    passed: bool
    problems: list[str] = field(default_factory=list)  # the first few
    count: int = 0  # how many problems in all


def shadow_histories() -> Check:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT s.id, s.name, d.device_id, s.version, count(h.id), min(h.version),
                   max(h.version), count(DISTINCT h.version)
            FROM shadows_shadow s
            JOIN devices_device d ON d.id = s.device_id
            LEFT JOIN shadows_shadowhistory h ON h.shadow_id = s.id
            GROUP BY s.id, s.name, d.device_id, s.version
            """
        )
        rows = cursor.fetchall()
    bad = [
        f"{device}/{name or 'classic'}: version {version}, history {count} row(s) "
        f"{low}..{high} ({distinct} distinct)"
        for _, name, device, version, count, low, high, distinct in rows
        if version and not (low == 1 and high == version and count == distinct == version)
    ]
    versions = sum(row[3] for row in rows)
    return Check(
        "shadow history contiguous",
        f"{len(rows)} shadows, 1..n each",
        f"{len(rows) - len(bad)} contiguous ({versions} versions)",
        not bad,
        bad[:EXAMPLES],
        len(bad),
    )


def executions(record: dict[str, dict]) -> Check:
    """The latest attempt of each (device, job) against the device's last status for the job."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT ON (e.device_id, e.job_id) d.device_id, j.job_id, e.status
            FROM firmware_jobexecution e
            JOIN devices_device d ON d.id = e.device_id
            JOIN firmware_job j ON j.id = e.job_id
            ORDER BY e.device_id, e.job_id, e.execution_number DESC
            """
        )
        portal = {(device, job): status for device, job, status in cursor.fetchall()}
    bad: list[str] = []
    pairs: Counter[str] = Counter()
    for (device, job), status in portal.items():
        entry = record.get(device)
        if entry is None:
            continue  # not a simulated device
        sent = entry["jobs"].get(job)
        allowed = set(MATCHES.get(sent, set()))
        if sent == S.SUCCEEDED and BOOTED_OLD in entry["faults"]:
            allowed = {S.SUCCEEDED, S.FAILED}
        unsent = job in entry.get("undelivered_jobs", ())
        if unsent:  # its last word never left the device: the portal still has the one before
            allowed |= {S.QUEUED, S.IN_PROGRESS}
        pairs[f"{'unsent ' if unsent else ''}{sent or 'nothing'}->{status}"] += 1
        if status not in allowed:
            bad.append(f"{device} {job}: the device sent {sent or 'nothing'}, portal {status}")
    for device, entry in record.items():
        for job in entry["jobs"]:
            if (device, job) not in portal:
                bad.append(f"{device} {job}: the device reported it; the portal has no execution")
    compared = sum(1 for device, _ in portal if device in record)
    return Check(
        "job executions match devices",
        f"{compared} executions as devices reported",
        f"{compared - len(bad)} match; " + ", ".join(f"{k} {v}" for k, v in sorted(pairs.items())),
        not bad,
        bad[:EXAMPLES],
        len(bad),
    )


def outbox(max_age: timedelta = timedelta(minutes=1)) -> Check:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), min(created_at), count(*) FILTER (WHERE created_at < %s) "
            "FROM fleetportal_outboxmessage",
            [timezone.now() - max_age],
        )
        total, oldest, stale = cursor.fetchone()
    age = f"oldest {(timezone.now() - oldest).total_seconds():.0f} s" if oldest else "empty"
    return Check(
        "outbox drained",
        "no row older than 60 s",
        f"{total} row(s), {stale} older ({age})",
        stale == 0,
        count=stale,
    )


def alerts(healthy: set[str]) -> Check:
    """`healthy`: the devices the profile gave none of UNHEALTHY_FAULTS."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT d.device_id, r.name, a.raised_at
            FROM monitoring_alert a
            JOIN devices_device d ON d.id = a.device_id
            JOIN monitoring_alertrule r ON r.id = a.rule_id
            WHERE a.resolved_at IS NULL
            """
        )
        open_alerts = cursor.fetchall()
    wrong = [
        f"{d}: {rule} since {raised:%H:%M:%S}" for d, rule, raised in open_alerts if d in healthy
    ]
    return Check(
        "no alert for a healthy device",
        f"0 open of {len(healthy)} healthy devices",
        f"{len(wrong)} open ({len(open_alerts)} open in all)",
        not wrong,
        wrong[:EXAMPLES],
        len(wrong),
    )
