"""Device groups' service layer: create, change and delete a group, and assign devices to a
static group. The admin and the REST API both call these; each runs in one transaction and
announces the change through devices.hooks (configuration reconciles its devices from there).

Rules about one group (a valid filter; no filter while devices are assigned) live in
DeviceGroup.clean(), which these functions run under the group's row lock.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from devices import hooks
from devices.choices import EventType
from devices.exceptions import DeviceDecommissioned
from devices.group_filters import compile_filters, validate_filters
from devices.models import DYNAMIC_GROUP_MEMBERS, Device, DeviceEvent, DeviceGroup
from fleetportal.paginators import capped_count

# What an operator or integrator may set; id and timestamps are the portal's.
EDITABLE_FIELDS = ("name", "description", "filters", "priority")


PREVIEW_SAMPLE = 20


@dataclass(frozen=True)
class Preview:
    """The devices a filter matches now: a count (exact up to the list limit, estimated past
    it) and the newest matches."""

    count: int
    approximate: bool
    sample: list[Device]


def preview(document: dict) -> Preview:
    """What a filter would match if saved (FilterError naming every problem if it is bad)."""
    validate_filters(document)
    return preview_members(Device.objects.filter(compile_filters(document)))


def preview_members(members) -> Preview:
    count, approximate = capped_count(members)
    sample = list(members.order_by("-created_at", "-id")[:PREVIEW_SAMPLE])
    return Preview(count, approximate, sample)


def create_group(fields: dict[str, Any], *, actor: str) -> DeviceGroup:
    _refuse_other_fields(fields)
    group = DeviceGroup(**fields)
    group.full_clean()
    with transaction.atomic():
        group.save()
        hooks.notify(hooks.GroupSaved(group, created=True, actor=actor, changed=tuple(fields)))
    return group


def update_group(group: DeviceGroup, changes: dict[str, Any], *, actor: str) -> DeviceGroup:
    """Apply the fields that differ; nothing (and no event) if none does."""
    _refuse_other_fields(changes)
    with transaction.atomic():
        # Locked so a device assignment (assign_devices) cannot slip in while a filter is added.
        locked = DeviceGroup.objects.select_for_update().get(pk=group.pk)
        changed = tuple(name for name, value in changes.items() if getattr(locked, name) != value)
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, changes[name])
        locked.full_clean()
        locked.save(update_fields=[*changed, "updated_at"])
        hooks.notify(hooks.GroupSaved(locked, created=False, actor=actor, changed=changed))
    return locked


def delete_group(group: DeviceGroup, *, actor: str) -> None:
    """Delete a group; its assigned devices are left without a group (no membership events:
    GroupDeleted says it all). Deleting a group that is already gone does nothing."""
    with transaction.atomic():
        locked = DeviceGroup.objects.select_for_update().filter(pk=group.pk).first()
        if locked is None:
            return
        # Before the delete, so hooks can still find what refers to the group.
        hooks.notify(hooks.GroupDeleted(locked, actor=actor))
        locked.delete()


def delete_groups(groups: Iterable[DeviceGroup], *, actor: str) -> None:
    with transaction.atomic():
        for group in groups:
            delete_group(group, actor=actor)


def assign_devices(devices: Iterable[Device], group: DeviceGroup | None, *, actor: str) -> int:
    """Put devices in a static group (out of the one they were in), or in none (`group` None).

    Each moved device gets an `updated` event, as if its group field were edited, and each group
    that gained or lost devices one GroupMembershipChanged. Returns how many devices moved.
    """
    pks = [device.pk for device in devices]
    with transaction.atomic():
        target = _lock_static(group) if group is not None else None
        locked = list(
            Device.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk__in=pks)
            .select_related("group")
            .order_by("pk")
        )
        moving = [d for d in locked if d.group_id != (target.pk if target else None)]
        for device in moving:
            if device.is_decommissioned:
                raise DeviceDecommissioned(device.device_id)
        _move(moving, target, actor)
    return len(moving)


def remove_devices(group: DeviceGroup, devices: Iterable[Device], *, actor: str) -> int:
    """Take devices out of `group`; devices not in it are left alone. How many left it."""
    members = Device.objects.filter(pk__in=[d.pk for d in devices], group=group)
    return assign_devices(members, None, actor=actor)


def _refuse_other_fields(fields: dict[str, Any]) -> None:
    refused = set(fields) - set(EDITABLE_FIELDS)
    if refused:
        raise ValidationError(dict.fromkeys(sorted(refused), "This field cannot be set here."))


def _lock_static(group: DeviceGroup) -> DeviceGroup:
    locked = DeviceGroup.objects.select_for_update().get(pk=group.pk)
    if locked.is_dynamic:
        raise ValidationError({"group": DYNAMIC_GROUP_MEMBERS})
    return locked


def _move(devices: list[Device], target: DeviceGroup | None, actor: str) -> None:
    if not devices:
        return
    now = timezone.now()
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(group=target, updated_at=now)
    DeviceEvent.objects.bulk_create(
        DeviceEvent(
            device=device,
            event_type=EventType.UPDATED,
            actor=actor,
            event_data={"changes": {"group": [_name(device.group), _name(target)]}},
        )
        for device in devices
    )
    leaving: dict[DeviceGroup | None, list[Device]] = {}
    for device in devices:
        leaving.setdefault(device.group, []).append(device)
        device.group, device.updated_at = target, now
    for old, moved in leaving.items():
        announce_move(moved, old, None, actor=actor)
    announce_move(devices, None, target, actor=actor)


def announce_move(
    devices: list[Device], old: DeviceGroup | None, new: DeviceGroup | None, *, actor: str
) -> None:
    """Fire the membership hooks for devices that moved from `old` to `new` (either None)."""
    if old is not None:
        hooks.notify(hooks.GroupMembershipChanged(old, actor, removed=tuple(devices)))
    if new is not None:
        hooks.notify(hooks.GroupMembershipChanged(new, actor, added=tuple(devices)))


def _name(group: DeviceGroup | None) -> str | None:
    return str(group) if group is not None else None


# How many dynamic groups the device page tests a device against: each is one boolean in the
# same query, so the page stays one query however many there are, and bounded.
MEMBERSHIP_CHECK_LIMIT = 100


def dynamic_groups_of(device: Device, limit: int = MEMBERSHIP_CHECK_LIMIT) -> tuple[list, bool]:
    """The dynamic groups whose filter matches `device` now, by name, and whether more dynamic
    groups exist than were checked. Two queries: the groups, then one row of the device with
    a boolean per group (a filter that no longer compiles matches nothing)."""
    candidates = list(DeviceGroup.objects.exclude(filters={}).order_by("name")[: limit + 1])
    checked, more = candidates[:limit], len(candidates) > limit
    flags = {}
    for n, group in enumerate(checked):
        try:
            condition = group.membership()
        except ValidationError:
            continue
        flags[f"in_{n}"] = ExpressionWrapper(condition, output_field=BooleanField())
    if not flags:
        return [], more
    row = Device.objects.filter(pk=device.pk).annotate(**flags).values(*flags).first() or {}
    return [group for n, group in enumerate(checked) if row.get(f"in_{n}")], more
