"""One device's health (the seed's getDeviceHealth), in a constant number of queries:

1. the device with its presence, its active certificate's expiry, its classic shadow's reported
   state, its current job execution and its configuration counts (subqueries of one SELECT);
2. its device type's health settings (battery and signal keys).

Battery and signal are read from the reported state at the type's keys ("battery" or dotted
"power.battery"); a type without settings has none.
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from devices.choices import CredentialStatus
from devices.models import Device, DeviceCredential
from firmware.choices import ExecutionStatus
from firmware.models import JobExecution
from monitoring.models.presence import DeviceTypeHealth
from shadows.configuration.states import drift_cutoff, drifting
from shadows.models import DeviceConfiguration, Shadow

_ACTIVE_EXECUTIONS = (ExecutionStatus.IN_PROGRESS, ExecutionStatus.QUEUED)


@dataclass(frozen=True)
class Health:
    device_id: str
    status: str
    online: bool
    last_seen: datetime | None
    connected_at: datetime | None
    disconnected_at: datetime | None
    presence_changed_at: datetime | None
    presence_reason: str
    battery: Any
    signal: Any
    firmware_version: str
    certificate_expires_at: datetime | None
    configuration: dict[str, int]  # applied / drifting / pending keys
    current_job: dict | None

    def as_dict(self) -> dict:
        return asdict(self)


def device_health(device_id: str) -> Health:
    device = get_object_or_404(_annotated(), device_id=device_id)
    settings_row = DeviceTypeHealth.objects.filter(device_type=device.device_type).first()
    reported = device.reported or {}
    presence = getattr(device, "presence", None)
    return Health(
        device_id=device.device_id,
        status=device.status,
        online=bool(presence and presence.online),
        last_seen=device.last_seen,
        connected_at=presence.connected_at if presence else None,
        disconnected_at=presence.disconnected_at if presence else None,
        presence_changed_at=presence.changed_at if presence else None,
        presence_reason=presence.reason if presence else "",
        battery=reported_value(reported, settings_row.battery_key if settings_row else ""),
        signal=reported_value(reported, settings_row.signal_key if settings_row else ""),
        firmware_version=device.firmware_version,
        certificate_expires_at=device.certificate_expires_at,
        configuration={
            "applied": device.config_applied,
            "drifting": device.config_drifting,
            "pending": device.config_total - device.config_applied - device.config_drifting,
        },
        current_job=_job(device),
    )


def reported_value(reported: dict, dotted_key: str) -> Any:
    """The value at "power.battery" in the reported state, or None; only plain values count."""
    if not dotted_key:
        return None
    value: Any = reported
    for part in dotted_key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, int | float | str | bool) else None


def _annotated():
    device = OuterRef("pk")
    credential = DeviceCredential.objects.filter(device=device, status=CredentialStatus.ACTIVE)
    executions = JobExecution.objects.filter(device=device, status__in=_ACTIVE_EXECUTIONS)
    # IN_PROGRESS sorts before QUEUED: the running one, else the next one.
    current = executions.order_by("status", "queued_at")
    rows = DeviceConfiguration.objects.filter(device=device).order_by().values("device")
    cutoff = drift_cutoff(timezone.now())

    def count(condition: Q | None = None) -> Coalesce:
        counted = rows.filter(condition or Q()).annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    return Device.objects.select_related("presence").annotate(
        certificate_expires_at=Subquery(
            credential.order_by("-created_at").values("expires_at")[:1]
        ),
        reported=Subquery(
            Shadow.objects.filter(device=device, name="").values("reported_state")[:1]
        ),
        job_id=Subquery(current.values("job__job_id")[:1]),
        job_status=Subquery(current.values("status")[:1]),
        job_execution_number=Subquery(current.values("execution_number")[:1]),
        config_total=count(),
        config_applied=count(Q(applied=True)),
        config_drifting=count(drifting(cutoff)),
    )


def _job(device) -> dict | None:
    if device.job_id is None:
        return None
    return {
        "job_id": device.job_id,
        "status": device.job_status,
        "execution_number": device.job_execution_number,
    }
