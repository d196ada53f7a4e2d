"""The device registry's service layer: every entry point (admin, REST, tasks, MQTT) calls these.

Each function runs in one transaction and writes the DeviceEvent that records the change, so a
change and its history land together or not at all.
"""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices import lifecycle
from devices.choices import DeviceStatus, EventType
from devices.exceptions import (
    DeviceDecommissioned,
    DeviceIdTaken,
    IllegalTransition,
    StatusConflict,
)
from devices.models import Device, DeviceEvent


def _jsonable(value: Any) -> Any:
    if hasattr(value, "pk"):
        return str(value)
    return value


def register_device(fields: dict[str, Any], *, actor: str) -> Device:
    """Create a device in status `registered` and record the registration."""
    device = Device(**fields)
    device.status = DeviceStatus.REGISTERED
    device.full_clean()
    try:
        with transaction.atomic():
            device.save(force_insert=True)
            record_event(device, EventType.REGISTERED, actor=actor)
    except IntegrityError as exc:
        # Two registrations of the same device_id raced past full_clean's unique check.
        raise DeviceIdTaken(device.device_id) from exc
    return device


def update_device(device: Device, changes: dict[str, Any], *, actor: str) -> Device:
    """Change a device's mutable fields; records which fields changed, old and new."""
    refused = set(changes) - set(Device.MUTABLE_FIELDS)
    if refused:
        raise ValidationError(dict.fromkeys(sorted(refused), "This field cannot be changed here."))
    with transaction.atomic():
        locked = Device.objects.select_for_update().get(pk=device.pk)
        if locked.is_decommissioned:
            raise DeviceDecommissioned(locked.device_id)
        diff = {}
        for name, value in changes.items():
            old = getattr(locked, name)
            if old != value:
                diff[name] = [_jsonable(old), _jsonable(value)]
                setattr(locked, name, value)
        if not diff:
            return locked
        locked.full_clean(validate_unique=False)
        locked.save(update_fields=[*diff, "updated_at"])
        record_event(locked, EventType.UPDATED, actor=actor, data={"changes": diff})
    return locked


def transition_device(
    device: Device,
    target: str,
    *,
    actor: str,
    reason: str = "",
    expected: str | None = None,
) -> Device:
    """Move one device to `target`, or raise IllegalTransition / StatusConflict.

    The row lock makes concurrent transitions queue up: the second sees the first one's status,
    so two requests for the same move cannot both succeed.
    """
    with transaction.atomic():
        locked = Device.objects.select_for_update().get(pk=device.pk)
        if expected is not None and locked.status != expected:
            raise StatusConflict(expected, locked.status)
        _check(locked, target)
        event = DeviceEvent(**_transition_event(locked, target, actor, reason))
        _apply(locked, target)
        locked.save(update_fields=["status", "updated_at"])
        event.save()
        if target == DeviceStatus.DECOMMISSIONED:
            _revoke_credentials([locked], actor)
    return locked


def transition_devices(
    devices: Iterable[Device], target: str, *, actor: str, reason: str = ""
) -> tuple[list[Device], list[Device]]:
    """Move many devices at once (admin actions); returns (moved, refused).

    Devices for which the move is illegal are left as they are and returned as refused.
    """
    pks = [d.pk for d in devices]
    moved, refused, events = [], [], []
    with transaction.atomic():
        for device in Device.objects.select_for_update().filter(pk__in=pks).order_by("pk"):
            if not lifecycle.can_transition(device.status, target):
                refused.append(device)
                continue
            events.append(DeviceEvent(**_transition_event(device, target, actor, reason)))
            _apply(device, target)
            moved.append(device)
        Device.objects.bulk_update(moved, ["status", "updated_at"], batch_size=1000)
        DeviceEvent.objects.bulk_create(events, batch_size=1000)
        if moved and target == DeviceStatus.DECOMMISSIONED:
            _revoke_credentials(moved, actor)
    return moved, refused


def record_event(
    device: Device, event_type: str, *, actor: str, data: dict | None = None
) -> DeviceEvent:
    return DeviceEvent.objects.create(
        device=device, event_type=event_type, actor=actor, event_data=data or {}
    )


def _revoke_credentials(devices: list[Device], actor: str) -> None:
    # A decommissioned device loses its certificates in the same transaction (issue 3 §7).
    # Imported here: devices.credentials builds on this module.
    from devices import credentials

    credentials.revoke_devices_credentials(
        devices, actor=actor, reason=credentials.CESSATION_OF_OPERATION
    )


def _check(device: Device, target: str) -> None:
    if target not in DeviceStatus.values:
        raise ValidationError({"status": f"{target!r} is not a device status."})
    if not lifecycle.can_transition(device.status, target):
        raise IllegalTransition(device.status, target, lifecycle.allowed_targets(device.status))


def _apply(device: Device, target: str) -> None:
    device.status = target
    device.updated_at = timezone.now()


def _transition_event(device: Device, target: str, actor: str, reason: str) -> dict:
    return {
        "device": device,
        "event_type": EventType.STATUS_CHANGED,
        "actor": actor,
        "event_data": {"from": device.status, "to": target, "reason": reason},
    }
