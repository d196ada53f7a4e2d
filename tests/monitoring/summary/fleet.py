"""A small fleet whose every summary figure is counted by hand in the comments."""

from datetime import timedelta

from django.utils import timezone

from devices.choices import CredentialStatus, DeviceStatus
from devices.models import Device, DeviceCredential, DeviceEvent
from firmware.models import Job
from firmware.rollouts.models import Rollout
from monitoring.models import Alert, AlertRule, OnlineSample, Presence
from shadows.models import DeviceConfiguration

NOW = timezone.now()


def device(device_id: str, status: str, device_type: str, version: str, **fields) -> Device:
    return Device.objects.create(
        device_id=device_id,
        status=status,
        device_type=device_type,
        firmware_version=version,
        **fields,
    )


def certificate(device: Device, serial: str, expires_in: timedelta, **fields):
    fields.setdefault("status", CredentialStatus.ACTIVE)
    return DeviceCredential.objects.create(
        device=device,
        credential_value="-----BEGIN CERTIFICATE-----",
        serial_number=serial,
        fingerprint=serial * 8,
        common_name=device.device_id,
        not_before=NOW - timedelta(days=300),
        expires_at=NOW + expires_in,
        **fields,
    )


def hand_counted_fleet() -> dict[str, Device]:
    seen = {"last_seen": NOW - timedelta(minutes=1)}
    d = {
        # sensors: 1.0.0 x3 (a1, a2, a3 — plus dec1, decommissioned, not counted), 2.0.0 x1,
        # "" x1 (r1) -> 5 in service
        "a1": device("a1", DeviceStatus.ACTIVE, "sensor", "1.0.0", **seen),
        "a2": device("a2", DeviceStatus.ACTIVE, "sensor", "1.0.0", **seen),
        "a3": device("a3", DeviceStatus.ACTIVE, "sensor", "1.0.0"),
        "a4": device("a4", DeviceStatus.ACTIVE, "sensor", "2.0.0", **seen),
        "r1": device("r1", DeviceStatus.REGISTERED, "sensor", ""),
        # gateways: "" x1, 3.1 x1
        "g1": device("g1", DeviceStatus.ACTIVE, "gateway", ""),
        "m1": device("m1", DeviceStatus.MAINTENANCE, "gateway", "3.1"),
        "dec1": device("dec1", DeviceStatus.DECOMMISSIONED, "sensor", "1.0.0"),
    }
    # online: a1, a2; offline: a4, m1; never connected: a3, g1, r1; dec1 is out of service.
    for name, online in (("a1", True), ("a2", True), ("a4", False), ("m1", False), ("dec1", True)):
        Presence.objects.create(device=d[name], online=online, changed_at=NOW)

    # expiring within 7 days: a1's; within 30: a1's and a2's. a3's is later, a4's revoked,
    # a1's old one already expired.
    certificate(d["a1"], "01", timedelta(days=3))
    certificate(d["a2"], "02", timedelta(days=20))
    certificate(d["a3"], "03", timedelta(days=60))
    certificate(d["a4"], "04", timedelta(days=2), revoked=True, revoked_at=NOW, status="revoked")
    certificate(d["a1"], "05", timedelta(days=-1))

    # drift: a1 (one key), a4 (two keys) -> 2 devices; a2 applied; g1 never connected (pending).
    hour_ago = NOW - timedelta(hours=1)
    for name, key, applied in (
        ("a1", "rate", False),
        ("a2", "rate", True),
        ("g1", "rate", False),
        ("a4", "rate", False),
        ("a4", "mode", False),
    ):
        DeviceConfiguration.objects.create(
            device=d[name],
            config_key=key,
            config_value=1,
            version=1,
            applied=applied,
            pushed_at=hour_ago,
        )

    # open alerts: critical a1, a2; warning a4 (newest). One resolved critical.
    rule = AlertRule.objects.create(name="battery low", kind="filter", severity="critical")
    for name, severity, minutes_ago, resolved in (
        ("a1", "critical", 30, None),
        ("a2", "critical", 20, None),
        ("a4", "warning", 10, None),
        ("a3", "critical", 40, NOW),
    ):
        Alert.objects.create(
            rule=rule,
            device=d[name],
            severity=severity,
            raised_at=NOW - timedelta(minutes=minutes_ago),
            resolved_at=resolved,
        )

    # jobs: one in progress, one scheduled, one completed; rollouts: running, paused, draft.
    for job_id, status in (("j1", "IN_PROGRESS"), ("j2", "SCHEDULED"), ("j3", "COMPLETED")):
        Job.objects.create(job_id=job_id, document={}, status=status)
    for rollout_id, status in (("r1", "running"), ("r2", "paused"), ("r3", "draft")):
        Rollout.objects.create(rollout_id=rollout_id, status=status)

    # events, newest last
    DeviceEvent.objects.create(
        device=d["a1"],
        event_type="registered",
        actor="system",
        created_at=NOW - timedelta(minutes=5),
    )
    DeviceEvent.objects.create(
        device=d["m1"],
        event_type="status_changed",
        actor="otto",
        created_at=NOW - timedelta(minutes=1),
    )

    # samples: 23 h ago 1 of 2 online (0.5); 25 h ago (outside the 24 h) 0 of 2.
    OnlineSample.objects.create(sampled_at=NOW - timedelta(hours=23), online=1, in_service=2)
    OnlineSample.objects.create(sampled_at=NOW - timedelta(hours=25), online=0, in_service=2)
    return d
