"""Builders for the rollout tests: a fleet made in one statement, a rollout's API fields."""

from typing import Any

from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device, DeviceGroup


def fleet(count: int, prefix: str = "dev", **fields: Any) -> list[Device]:
    """`count` active sensors on 1.0.0, seen just now, made in one INSERT."""
    fields.setdefault("device_type", "sensor")
    fields.setdefault("firmware_version", "1.0.0")
    fields.setdefault("status", DeviceStatus.ACTIVE)
    fields.setdefault("last_seen", timezone.now())
    return Device.objects.bulk_create(
        Device(device_id=f"{prefix}-{n:06d}", **fields) for n in range(count)
    )


def group_of(devices: list[Device], name: str = "all-sensors") -> DeviceGroup:
    group = DeviceGroup.objects.create(name=name)
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(group=group)
    return group


def fields(firmware, *, rollout_id: str = "ro-1", groups=("all-sensors",), **extra: Any) -> dict:
    return {
        "rollout_id": rollout_id,
        "firmware": firmware.pk,
        "targets": {"groups": list(groups)},
        "waves": [
            {"selector": "count", "count": 2},
            {"selector": "percent", "percent": 50},
            {"selector": "percent", "percent": 100},
        ],
        **extra,
    }
