"""The device registry's service layer: every entry point (admin, REST, tasks, MQTT) calls these.

Each function runs in one transaction and writes the DeviceEvent that records the change, so a
change and its history land together or not at all. Other apps react through devices.hooks,
whose hooks run in the same transaction (credential revocation on decommissioning is one).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices import groups, hooks, lifecycle
from devices.choices import DeviceStatus, EventType
from devices.exceptions import (
    DeviceDecommissioned,
    DeviceIdTaken,
    IllegalTransition,
    StatusConflict,
)
from devices.models import Device, DeviceEvent, DeviceGroup, DeviceTypeGateway
from fleetportal import gateways
from fleetportal.bridge import coverage


def _jsonable(value: Any) -> Any:
    if hasattr(value, "pk"):
        return str(value)
    return value


def register_device(fields: dict[str, Any], *, actor: str) -> Device:
    """Create a device in status `registered` and record the registration."""
    (registered,) = register_devices([fields], actor=actor)
    if isinstance(registered, Exception):
        raise registered
    return registered


Registration = Device | ValidationError | DeviceIdTaken


def register_devices(rows: Sequence[dict[str, Any]], *, actor: str) -> list[Registration]:
    """Register many devices at once; for each row, in order, its new device or why it was refused.

    Each row is checked as a single registration would be; of rows repeating a device_id the
    first wins. The valid rows and their REGISTERED events are written in one transaction.
    """
    devices = [_unsaved_device(fields) for fields in rows]
    _default_gateways(
        [d for d, fields in zip(devices, rows, strict=True) if not fields.get("gateway")]
    )
    errors = _field_errors(devices)
    _refuse_taken_ids(devices, errors)
    results: list[Registration] = [
        ValidationError(error) if error else device
        for device, error in zip(devices, errors, strict=True)
    ]
    valid = [device for device in results if isinstance(device, Device)]
    try:
        _insert_registered(valid, actor)
    except IntegrityError:
        # A registration racing past the check took one of these device_ids: row by row, so
        # only that row is refused.
        return [_register_one(row, actor) if isinstance(row, Device) else row for row in results]
    return results


def _unsaved_device(fields: dict[str, Any]) -> Device:
    device = Device(**fields)
    device.status = DeviceStatus.REGISTERED
    return device


def _default_gateways(devices: list[Device]) -> None:
    """Devices registered without a gateway start on their device type's default (one query)."""
    types = {device.device_type for device in devices}
    if not types:
        return
    defaults = dict(
        DeviceTypeGateway.objects.filter(device_type__in=types).values_list(
            "device_type", "gateway"
        )
    )
    for device in devices:
        device.gateway = defaults.get(device.device_type) or gateways.MOSQUITTO


def _field_errors(devices: list[Device]) -> list[dict[str, list[ValidationError]]]:
    # full_clean would look a device's group up once per row: look the batch's groups up at once
    # and let full_clean check only those that do not exist (to report them as it does).
    group_ids = {device.group_id for device in devices if device.group_id}
    known = set(DeviceGroup.objects.filter(pk__in=group_ids).values_list("pk", flat=True))
    return [
        _clean(device, exclude=["group"] if device.group_id in known else []) for device in devices
    ]


def _clean(device: Device, exclude: list[str]) -> dict[str, list[ValidationError]]:
    try:
        # Uniqueness is checked for the whole batch at once by _refuse_taken_ids.
        device.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        return exc.error_dict
    return {}


def _refuse_taken_ids(
    devices: list[Device], errors: list[dict[str, list[ValidationError]]]
) -> None:
    candidates = [
        d.device_id for d, error in zip(devices, errors, strict=True) if "device_id" not in error
    ]
    taken = set(Device.objects.filter(device_id__in=candidates).values_list("device_id", flat=True))
    for device, error in zip(devices, errors, strict=True):
        if "device_id" in error:
            continue
        if device.device_id in taken:
            error["device_id"] = [device.unique_error_message(Device, ("device_id",))]
        taken.add(device.device_id)  # a later row repeating it is refused


def _insert_registered(devices: list[Device], actor: str) -> None:
    if not devices:
        return
    with transaction.atomic():
        Device.objects.bulk_create(devices, batch_size=1000)
        DeviceEvent.objects.bulk_create(
            (DeviceEvent(device=d, event_type=EventType.REGISTERED, actor=actor) for d in devices),
            batch_size=1000,
        )
        hooks.notify(hooks.DevicesRegistered(tuple(devices), actor))
        # After the commit: partitioned bridges subscribe the new devices' topics.
        coverage.announce_new_devices()


def _register_one(device: Device, actor: str) -> Device | DeviceIdTaken:
    try:
        _insert_registered([device], actor)
    except IntegrityError:
        return DeviceIdTaken(device.device_id)
    return device


def update_device(device: Device, changes: dict[str, Any], *, actor: str) -> Device:
    """Change a device's mutable fields; records which fields changed, old and new."""
    refused = set(changes) - set(Device.MUTABLE_FIELDS)
    if refused:
        raise ValidationError(dict.fromkeys(sorted(refused), "This field cannot be changed here."))
    with transaction.atomic():
        locked = Device.objects.select_for_update(no_key=True).get(pk=device.pk)
        if locked.is_decommissioned:
            raise DeviceDecommissioned(locked.device_id)
        diff = {}
        old_group = locked.group if "group" in changes else None
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
        if "group" in diff:
            groups.announce_move([locked], old_group, locked.group, actor=actor)
        hooks.notify(hooks.DeviceUpdated(locked, tuple(diff), actor, previous=_previous(diff)))
    return locked


def _previous(diff: dict[str, list[Any]]) -> dict[str, Any]:
    return {name: old for name, (old, _new) in diff.items()}


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
        locked = Device.objects.select_for_update(no_key=True).get(pk=device.pk)
        if expected is not None and locked.status != expected:
            raise StatusConflict(expected, locked.status)
        _check(locked, target)
        move = hooks.Move(locked, locked.status)
        event = DeviceEvent(**_transition_event(locked, target, actor, reason))
        _apply(locked, target, timezone.now())
        locked.save(update_fields=["status", "updated_at"])
        event.save()
        hooks.notify(hooks.DevicesTransitioned((move,), target, actor, reason))
    return locked


def transition_devices(
    devices: Iterable[Device], target: str, *, actor: str, reason: str = ""
) -> tuple[list[Device], list[Device]]:
    """Move many devices at once (admin actions); returns (moved, refused).

    Devices for which the move is illegal are left as they are and returned as refused.
    """
    pks = [d.pk for d in devices]
    with transaction.atomic():
        locked = Device.objects.select_for_update(no_key=True).filter(pk__in=pks).order_by("pk")
        return transition_locked_devices(list(locked), target, actor=actor, reason=reason)


def transition_locked_devices(
    devices: list[Device], target: str, *, actor: str, reason: str = ""
) -> tuple[list[Device], list[Device]]:
    """transition_devices for rows the caller has locked in its transaction; moves them in place."""
    moves, refused, events, now = [], [], [], timezone.now()
    for device in devices:
        if not lifecycle.can_transition(device.status, target):
            refused.append(device)
            continue
        moves.append(hooks.Move(device, device.status))
        events.append(DeviceEvent(**_transition_event(device, target, actor, reason)))
        _apply(device, target, now)
    moved = [move.device for move in moves]
    # One plain UPDATE: every moved row gets the same values (bulk_update would build a CASE
    # with a branch per row, which costs more than the rest of a 200-device batch together).
    Device.objects.filter(pk__in=[d.pk for d in moved]).update(status=target, updated_at=now)
    DeviceEvent.objects.bulk_create(events, batch_size=1000)
    if moves:
        hooks.notify(hooks.DevicesTransitioned(tuple(moves), target, actor, reason))
    return moved, refused


def record_event(
    device: Device, event_type: str, *, actor: str, data: dict | None = None
) -> DeviceEvent:
    return DeviceEvent.objects.create(
        device=device, event_type=event_type, actor=actor, event_data=data or {}
    )


def _check(device: Device, target: str) -> None:
    if target not in DeviceStatus.values:
        raise ValidationError({"status": f"{target!r} is not a device status."})
    if not lifecycle.can_transition(device.status, target):
        raise IllegalTransition(device.status, target, lifecycle.allowed_targets(device.status))


def _apply(device: Device, target: str, at: datetime) -> None:
    device.status = target
    device.updated_at = at


def _transition_event(device: Device, target: str, actor: str, reason: str) -> dict:
    return {
        "device": device,
        "event_type": EventType.STATUS_CHANGED,
        "actor": actor,
        "event_data": {"from": device.status, "to": target, "reason": reason},
    }
