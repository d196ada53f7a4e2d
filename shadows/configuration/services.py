"""The configuration service: the one place that changes configuration and pushes it.

A change (`set_value`, `remove_value`) is checked first — the key's pattern, the value, and the
resulting configuration of EVERY device it affects must fit the `config` shadow — and refused
with nothing written when any would not. Then, in one transaction, the value, its new version
and a ConfigChange (who, when, old, new) are stored and the affected devices are rendered:
their effective configuration becomes the desired state of their `config` shadow through
shadows.services (so the delta goes out through the outbox, to offline devices when they come
back), and their DeviceConfiguration rows record what was pushed. A group with more members
than RENDER_INLINE_LIMIT is rendered after the commit by Celery, one task per batch.

The device's own report marks a key applied (`on_config_reports`, a hook on the shadow writes):
a key is applied when the `config` shadow's reported value equals what was pushed.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone

from devices import hooks
from devices.models import Device, DeviceGroup
from fleetportal import live, outbox, topics
from shadows import batch
from shadows.configuration import CONFIG_SHADOW, states
from shadows.configuration.keys import ConfigError, check_fits, check_key, check_value
from shadows.configuration.layering import Effective, GroupLayer, Setting, effective, rendered
from shadows.configuration.states import drift_cutoff
from shadows.document import json_equal, merge_patch_between
from shadows.models import ConfigChange, ConfigValue, DeviceConfiguration, Shadow
from shadows.writes import AcceptedUpdate

log = logging.getLogger(__name__)

# Groups up to this size are rendered in the request's transaction (the answer shows the
# result); bigger ones after the commit, one Celery task per RENDER_BATCH devices.
RENDER_INLINE_LIMIT = 200
RENDER_BATCH = 500
SAMPLE_SIZE = 10


# --- Reading


def group_layers() -> tuple[list[GroupLayer], dict[Any, DeviceGroup]]:
    """Every group that sets configuration, with its values (few rows: groups times keys)."""
    by_group: dict[Any, dict[str, Setting]] = defaultdict(dict)
    groups: dict[Any, DeviceGroup] = {}
    for value in ConfigValue.objects.filter(group__isnull=False).select_related("group"):
        if value.group is not None:  # always, by the filter; says so to the type checker
            by_group[value.group_id][value.key] = Setting(value.value, value.version)
            groups[value.group_id] = value.group
    layers = [
        GroupLayer(g.pk, g.name, g.priority, g.created_at, by_group[g.pk]) for g in groups.values()
    ]
    return layers, groups


def configured_groups():
    """The groups that set at least one configuration value."""
    return DeviceGroup.objects.filter(Exists(ConfigValue.objects.filter(group=OuterRef("pk"))))


def _membership_flags(groups: dict[Any, DeviceGroup]) -> dict[str, ExpressionWrapper]:
    # One boolean column per configured group: membership of many groups in one query.
    return {
        f"in_{index}": ExpressionWrapper(group.membership(), output_field=BooleanField())
        for index, group in enumerate(groups.values())
    }


def layers_of(devices: Iterable[Device]) -> dict[Any, tuple[dict[str, Setting], list[GroupLayer]]]:
    """For each device: its own values and the layers of the configured groups it is in.

    Three queries whatever the number of devices: group values, memberships, own values."""
    devices = list(devices)
    pks = [d.pk for d in devices]
    layers, groups = group_layers()
    member_of: dict[Any, list[GroupLayer]] = {pk: [] for pk in pks}
    if layers and pks:
        flags = _membership_flags(groups)
        rows = Device.objects.filter(pk__in=pks).annotate(**flags).values("pk", *flags)
        for row in rows:
            member_of[row["pk"]] = [
                layer for index, layer in enumerate(layers) if row[f"in_{index}"]
            ]
    own: dict[Any, dict[str, Setting]] = {pk: {} for pk in pks}
    for value in ConfigValue.objects.filter(device__in=pks):
        own[value.device_id][value.key] = Setting(value.value, value.version)
    return {pk: (own[pk], member_of[pk]) for pk in pks}


def effective_configuration(device: Device) -> dict[str, Effective]:
    """The device's effective configuration, every key with its value and source."""
    own, layers = layers_of([device])[device.pk]
    return effective(own, layers)


def affected_devices(*, group: DeviceGroup | None = None, device: Device | None = None):
    """The devices a value set on `group` or `device` applies to (decommissioned ones excluded)."""
    if group is not None:
        return group.members().in_service()
    if device is not None:
        return Device.objects.filter(pk=device.pk).in_service()
    raise TypeError("affected_devices needs a group or a device")


# --- Checking a change before anything is written


@dataclass(frozen=True)
class Preview:
    """What a change would do: how many devices it reaches and a sample of their results."""

    devices: int
    sample: list[tuple[Device, dict[str, Effective]]]


def preview(
    key: str,
    value: Any,
    *,
    group: DeviceGroup | None = None,
    device: Device | None = None,
) -> Preview:
    """Check a change (ConfigError if any affected device's configuration would not fit) and
    show its effect on a sample of the devices, without writing anything."""
    _check_request(key, value, group, device)
    count = _check_every_device(key, value, group=group, device=device)
    sample = list(affected_devices(group=group, device=device).order_by("device_id")[:SAMPLE_SIZE])
    layers = layers_of(sample)
    results = []
    for item in sample:
        own, member_of = layers[item.pk]
        own, member_of = _with_change(own, member_of, key, value, group=group, device=device)
        results.append((item, effective(own, member_of)))
    return Preview(count, results)


def _with_change(own, member_of, key, value, *, group, device):
    """A device's layers as they would be after the change."""
    if device is not None:
        own = {k: v for k, v in own.items() if k != key}
        if value is not None:
            own[key] = Setting(value, 0)
        return own, member_of
    layers = [layer for layer in member_of if layer.group_id != group.pk]
    values = {k: v for k, v in _group_values(group).items() if k != key}
    if value is not None:
        values[key] = Setting(value, 0)
    layers.append(GroupLayer(group.pk, group.name, group.priority, group.created_at, values))
    return own, layers


def _group_values(group: DeviceGroup) -> dict[str, Setting]:
    return {v.key: Setting(v.value, v.version) for v in ConfigValue.objects.filter(group=group)}


def _check_every_device(key, value, *, group, device) -> int:
    """Refuse the change if any affected device's new configuration would not fit its shadow.

    Devices in the same configured groups without values of their own share one configuration,
    so a group change is checked once per distinct combination of groups (one GROUP BY query),
    plus once per member that has values of its own. Returns how many devices are affected."""
    if device is not None:
        own, member_of = layers_of([device])[device.pk]
        _check(own, member_of, key, value, group=None, device=device)
        return 1
    layers, groups = group_layers()
    groups.pop(group.pk, None)
    layers = [layer for layer in layers if layer.group_id != group.pk]
    members = affected_devices(group=group)
    flags = _membership_flags(groups)
    has_own = Exists(ConfigValue.objects.filter(device=OuterRef("pk")))
    profiles = (
        members.annotate(has_own=has_own, **flags)
        .values("has_own", *flags)
        .annotate(devices=Count("pk"))
        .order_by()
    )
    total = 0
    for profile in profiles:
        total += profile["devices"]
        if profile["has_own"]:
            continue  # checked one by one below
        member_of = [layer for index, layer in enumerate(layers) if profile[f"in_{index}"]]
        _check({}, member_of, key, value, group=group, device=None)
    with_own = members.filter(Exists(ConfigValue.objects.filter(device=OuterRef("pk"))))
    for chunk in _chunks(with_own.only("pk", "device_id").order_by("pk").iterator(), 1000):
        names = {item.pk: item.device_id for item in chunk}
        for pk, (own, member_of) in layers_of(chunk).items():
            _check(own, member_of, key, value, group=group, device=None, device_id=names[pk])
    return total


def _check(own, member_of, key, value, *, group, device, device_id=None) -> None:
    own, member_of = _with_change(own, member_of, key, value, group=group, device=device)
    try:
        check_fits(rendered(effective(own, member_of)))
    except ConfigError as exc:
        where = f" for device {device_id}" if device_id else ""
        raise ConfigError("value", f"{exc.message}{where}") from exc


def _chunks(items: Iterable, size: int) -> Iterable[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- Changing


@transaction.atomic
def set_value(
    key: str,
    value: Any,
    *,
    actor: str,
    group: DeviceGroup | None = None,
    device: Device | None = None,
    create: bool = False,
) -> ConfigValue:
    """Set `key` to `value` on a group or a device, bump its version, record who, and push it.

    `create`: refuse (ConfigError on `key`) if the key is already set there, instead of
    changing it — so two integrators creating the same key cannot overwrite each other."""
    _check_request(key, value, group, device)
    if group is not None:
        DeviceGroup.objects.select_for_update().filter(pk=group.pk).first()
    current = _locked(key, group, device)
    if current is not None and create:
        raise ConfigError("key", f"Already set here: change config value {current.pk} instead.")
    if current is not None and json_equal(current.value, value):
        return current  # nothing changes: no new version, nothing pushed
    _check_every_device(key, value, group=group, device=device)
    now = timezone.now()
    old = current.value if current is not None else None
    version = _next_version(key, group, device)
    if current is None:
        current = ConfigValue(group=group, device=device, key=key)
    current.value, current.version = value, version
    current.updated_at, current.updated_by = now, actor
    current.save()
    _record(key, old, value, version, actor, group, device, now)
    _push(group, device, actor)
    return current


@transaction.atomic
def update_value(config_value: ConfigValue, value: Any, *, actor: str) -> ConfigValue:
    """Change an existing value (ConfigValueGone if it was removed meanwhile: a change must not
    bring back a value someone else just removed)."""
    if _locked(config_value.key, config_value.group, config_value.device) is None:
        raise ConfigValueGone()
    return set_value(
        config_value.key,
        value,
        actor=actor,
        group=config_value.group,
        device=config_value.device,
    )


@transaction.atomic
def remove_value(config_value: ConfigValue, *, actor: str) -> None:
    """Remove a value: the devices fall back to the next layer's value, or lose the key."""
    group, device = config_value.group, config_value.device
    current = _locked(config_value.key, group, device)
    if current is None:
        return
    _check_every_device(current.key, None, group=group, device=device)
    now = timezone.now()
    version = _next_version(current.key, group, device)
    current.delete()
    _record(current.key, current.value, None, version, actor, group, device, now)
    _push(group, device, actor)


class ConfigValueGone(ConfigError):
    code = "gone"
    http_status = 404

    def __init__(self):
        super().__init__("non_field_errors", "This configuration value has been removed.")


def _check_request(key, value, group, device) -> None:
    """What any change or preview must satisfy before the devices are looked at."""
    if (group is None) == (device is None):
        raise ConfigError("non_field_errors", "Set a value on exactly one group or one device.")
    check_value(check_key(key), value)
    if device is not None and device.is_decommissioned:
        raise ConfigError("device", "The device is decommissioned.")


def _locked(key, group, device) -> ConfigValue | None:
    scope = {"group": group} if group is not None else {"device": device}
    return ConfigValue.objects.select_for_update().filter(key=key, **scope).first()


def _next_version(key, group, device) -> int:
    # Versions continue after a removal: the change log holds the last one.
    scope = {"group": group} if group is not None else {"device": device}
    last = ConfigChange.objects.filter(key=key, **scope).order_by("-version").first()
    return (last.version if last else 0) + 1


def _record(key, old, new, version, actor, group, device, now) -> None:
    ConfigChange.objects.create(
        group=group,
        device=device,
        scope=f"group {group.name}" if group is not None else f"device {device.device_id}",
        key=key,
        old_value=old,
        new_value=new,
        version=version,
        actor=actor,
        created_at=now,
    )


def _push(group, device, actor) -> None:
    if device is not None:
        render([device], actor=actor)
        return
    members = affected_devices(group=group)
    if members[: RENDER_INLINE_LIMIT + 1].count() <= RENDER_INLINE_LIMIT:
        render(members, actor=actor)
        return
    from shadows.tasks import render_group_configuration

    group_pk = group.pk
    transaction.on_commit(lambda: render_group_configuration.delay(str(group_pk), actor))


# --- Rendering into the shadows


def render(devices: Iterable[Device], *, actor: str, now: datetime | None = None) -> int:
    """Push each device's effective configuration into its `config` shadow; how many changed.

    Only what differs is sent (a merge patch from the shadow's current desired state), so an
    unchanged device costs no shadow version and no message. The `config` shadow's desired
    state belongs to the configuration: keys set there by other means are removed."""
    now = now or timezone.now()
    devices = [d for d in devices if not d.is_decommissioned]
    if not devices:
        return 0
    layers = layers_of(devices)
    pks = [d.pk for d in devices]
    shadows = {s.device_id: s for s in Shadow.objects.filter(device__in=pks, name=CONFIG_SHADOW)}
    pushed: dict[Any, dict[str, DeviceConfiguration]] = defaultdict(dict)
    for row in DeviceConfiguration.objects.filter(device__in=pks):
        pushed[row.device_id][row.config_key] = row
    patches, results = [], []
    for device in devices:
        own, member_of = layers[device.pk]
        configuration = effective(own, member_of)
        shadow = shadows.get(device.pk)
        live = shadow if shadow is not None and shadow.live else None
        current = live.desired_state if live else {}
        patch = merge_patch_between(current, rendered(configuration))
        if patch:
            patches.append((device, patch))
        results.append((device, configuration, live.reported_state if live else {}))
    refused = batch.set_desired_many(CONFIG_SHADOW, patches, actor=f"config:{actor}", now=now)
    upserts, gone = [], []
    for device, configuration, reported in results:
        if device.pk in refused:
            # Checked before the change was written; only a device whose own reported state
            # fills the shadow can still refuse it. The others go ahead.
            log.warning("config: %s refused: %s", device.device_id, refused[device.pk].message)
            continue
        rows = pushed[device.pk]
        upserts += _changed_rows(device, configuration, rows, reported, now)
        gone += [row.pk for key, row in rows.items() if key not in configuration]
    if upserts:
        DeviceConfiguration.objects.bulk_create(
            upserts,
            update_conflicts=True,
            unique_fields=["device", "config_key"],
            update_fields=[
                "config_value",
                "version",
                "source_group",
                "applied",
                "applied_at",
                "pushed_at",
            ],
        )
    if gone:
        DeviceConfiguration.objects.filter(pk__in=gone).delete()
    return len(patches) - len(refused)


def repush(device: Device, *, actor: str) -> bool:
    """The device page's "push again": whatever differs from the device's `config` shadow is
    rendered as a new version; when nothing differs but the device has not reported it all,
    the shadow's current `update/delta` is sent again (through the outbox) for a device that
    missed it. False when there was nothing to push: the device reports its configuration."""
    from shadows.document.responses import delta_document
    from shadows.services import document_of, epoch

    with transaction.atomic():
        if render([device], actor=actor):
            return True
        shadow = Shadow.objects.filter(device=device, name=CONFIG_SHADOW, live=True).first()
        document = shadow and delta_document(document_of(shadow), epoch(timezone.now()), None)
        if not document:
            return False
        topic = topics.shadow_topic(device.device_id, CONFIG_SHADOW, "update", "delta")
        outbox.send(topic, document, device_id=device.device_id)
        return True


def _changed_rows(device, configuration, pushed, reported, now) -> list[DeviceConfiguration]:
    """DeviceConfiguration rows to write: what was pushed; applied at once if the device
    already reports that value."""
    changed = []
    for key, entry in configuration.items():
        row = pushed.get(key)
        same_value = row is not None and json_equal(row.config_value, entry.value)
        if (
            same_value
            and row.version == entry.version
            and row.source_group_id == entry.source_group_id
        ):
            continue
        if not same_value:
            applied = key in reported and json_equal(reported[key], entry.value)
            row = DeviceConfiguration(
                device=device,
                config_key=key,
                applied=applied,
                applied_at=now if applied else None,
                pushed_at=now,
            )
        row.config_value, row.version = entry.value, entry.version
        row.source_group_id = entry.source_group_id
        changed.append(row)
    return changed


def member_batches(group: DeviceGroup, size: int = RENDER_BATCH) -> Iterable[list]:
    """The group's member pks in keyset order, `size` at a time (one indexed query each)."""
    last_pk = None
    while True:
        members = affected_devices(group=group).order_by("pk")
        if last_pk is not None:
            members = members.filter(pk__gt=last_pk)
        batch = list(members.values_list("pk", flat=True)[:size])
        if not batch:
            return
        yield batch
        last_pk = batch[-1]


def render_pks(pks: list, *, actor: str) -> int:
    """Render these devices in one transaction (a batch of a big group: a Celery task each)."""
    # One channel-layer call per batch for the live pages, not one per device.
    with live.coalesced(), transaction.atomic():
        return render(Device.objects.filter(pk__in=pks).order_by("pk"), actor=actor)


def render_group(group: DeviceGroup, *, actor: str) -> int:
    """Render every member of a group here, RENDER_BATCH devices per transaction."""
    return sum(render_pks(batch, actor=actor) for batch in member_batches(group))


def reconcile(group: DeviceGroup | None = None, *, actor: str = "system") -> int:
    """Render the devices whose groups changed under them; how many shadows changed.

    A change of a value renders its devices at once, but membership also changes by itself:
    a device registered into a group, moved to another, or now matching (or no longer matching)
    a dynamic group's filter, and a group's priority or filter edited. For each group that sets
    configuration (or just `group`), the devices to render are:
    - members lacking a row for one of the group's keys (they joined);
    - devices whose row names the group as source but that are no longer members (they left);
    - members whose row for one of the group's keys comes from a group this one now beats;
    - (for all groups) devices whose value came from a group that was deleted.
    Run by Celery beat and after a group is saved."""
    layers, groups = group_layers()
    by_id = {layer.group_id: layer for layer in layers}
    if group is not None:
        layers = [layer for layer in layers if layer.group_id == group.pk]
        layers_left = [group.pk]
    else:
        layers_left = list(
            DeviceConfiguration.objects.filter(source_group__isnull=False)
            .values_list("source_group", flat=True)
            .distinct()
        )
    stale: set = set()
    for layer in layers:
        members = affected_devices(group=groups[layer.group_id])
        for key in layer.values:
            has_row = DeviceConfiguration.objects.filter(device=OuterRef("pk"), config_key=key)
            stale.update(members.exclude(Exists(has_row)).values_list("pk", flat=True))
            stale.update(_beaten(layer, key, members, by_id, groups))
    for group_pk in layers_left:
        current = groups.get(group_pk) or DeviceGroup.objects.filter(pk=group_pk).first()
        rows = DeviceConfiguration.objects.filter(source_group_id=group_pk)
        if current is not None:
            rows = rows.exclude(device__in=current.members().values("pk"))
        stale.update(rows.values_list("device", flat=True).distinct())
    if group is None:
        # Rows whose group was deleted (source_group set to NULL) and no own value backs them.
        own = ConfigValue.objects.filter(device=OuterRef("device"), key=OuterRef("config_key"))
        orphans = DeviceConfiguration.objects.filter(source_group__isnull=True).exclude(Exists(own))
        stale.update(orphans.values_list("device", flat=True).distinct())
    changed = 0
    for chunk in _chunks(sorted(stale), RENDER_BATCH):
        # One channel-layer call per batch for the live pages, not one per device.
        with live.coalesced(), transaction.atomic():
            changed += render(Device.objects.filter(pk__in=chunk), actor=actor)
    return changed


def _beaten(layer: GroupLayer, key: str, members, by_id, groups) -> list:
    """Members whose `key` comes from another group that `layer` now outranks."""
    rows = (
        DeviceConfiguration.objects.filter(config_key=key, device__in=members.values("pk"))
        .exclude(source_group=layer.group_id)
        .exclude(source_group__isnull=True)
        .values_list("device", "source_group")
    )
    stale = []
    for device_pk, source_pk in rows:
        source = by_id.get(source_pk)
        if source is None or layer.precedence() < source.precedence():
            stale.append(device_pk)
    return stale


# --- Registry hooks (devices.hooks, subscribed in ShadowsConfig.ready)


def on_group_saved(event: hooks.GroupSaved) -> None:
    if not event.created:  # a new group sets no configuration yet
        group_saved(event.group)


def on_group_deleted(event: hooks.GroupDeleted) -> None:
    group_deleted(event.group)


def on_membership_changed(event: hooks.GroupMembershipChanged) -> None:
    # Joining devices lack the group's keys, leaving ones hold rows naming it: both are what
    # reconcile(group) looks for.
    group_saved(event.group)


def group_saved(group: DeviceGroup) -> None:
    """A group's filter, priority, name or members changed: reconcile its devices after the
    commit, if it sets configuration."""
    has_configuration = (
        ConfigValue.objects.filter(group=group).exists()
        or DeviceConfiguration.objects.filter(source_group=group).exists()
    )
    if has_configuration:
        from shadows.tasks import reconcile_configuration

        group_pk = str(group.pk)
        transaction.on_commit(lambda: reconcile_configuration.delay(group_pk))


def group_deleted(group: DeviceGroup) -> None:
    """Before a group is deleted: if it set configuration, reconcile everything after the
    commit (its members fall back to their other layers)."""
    if DeviceConfiguration.objects.filter(source_group=group).exists():
        from shadows.tasks import reconcile_configuration

        transaction.on_commit(lambda: reconcile_configuration.delay(None))


# --- Applied, by the device's own report


def on_config_reports(updates: list[AcceptedUpdate]) -> None:
    """Shadow hook (writes.on_updates) on the `config` shadow, called with a whole batch of
    accepted updates: a key the device reported and whose reported value now equals the pushed
    one is applied; one it reports differently is not (any more). One query and one bulk
    update for the batch; the updates are replayed in order, so a key reported twice in a batch
    ends as one-by-one processing would leave it."""
    reports = [
        (update, update.change["reported"])
        for update in updates
        if update.change and isinstance(update.change.get("reported"), dict)
    ]
    if not reports:
        return
    rows = DeviceConfiguration.objects.filter(
        device_id__in={update.device_pk for update, _ in reports},
        config_key__in={key for _, keys in reports for key in keys},
    )
    pushed = {(row.device_id, row.config_key): row for row in rows}
    touched: dict[Any, DeviceConfiguration] = {}
    for update, keys in reports:
        for key in keys:
            config = pushed.get((update.device_pk, key))
            if config is None:
                continue
            reported = update.reported
            matches = key in reported and json_equal(reported[key], config.config_value)
            if matches != config.applied:
                config.applied, config.applied_at = matches, update.at if matches else None
                touched[config.pk] = config
    if touched:
        DeviceConfiguration.objects.bulk_update(list(touched.values()), ["applied", "applied_at"])


# --- Drift


def drifted(now: datetime | None = None):
    """DeviceConfiguration rows in the drift state (states.drifting)."""
    return DeviceConfiguration.objects.filter(states.drifting(drift_cutoff(now)))


def drifted_devices(group: DeviceGroup | None = None, now: datetime | None = None):
    """Devices with at least one drifted key (optionally only a group's members)."""
    rows = drifted(now).filter(device=OuterRef("pk"))
    # Decommissioned devices are never pushed again: their old rows are not drift.
    devices = Device.objects.filter(Exists(rows)).in_service()
    if group is not None:
        devices = devices.filter(group.membership())
    return devices


def drift_details(devices: list[Device], now: datetime | None = None) -> dict[Any, list[dict]]:
    """For each device, its drifted keys: pushed value, reported value, since when (2 queries)."""
    pks = [d.pk for d in devices]
    reported = {
        s.device_id: s.reported_state
        for s in Shadow.objects.filter(device__in=pks, name=CONFIG_SHADOW, live=True)
    }
    details: dict[Any, list[dict]] = {pk: [] for pk in pks}
    for row in drifted(now).filter(device__in=pks).order_by("config_key"):
        state = reported.get(row.device_id, {})
        details[row.device_id].append(
            {
                "key": row.config_key,
                "desired": row.config_value,
                "reported": state.get(row.config_key),
                "reported_present": row.config_key in state,
                "version": row.version,
                "pushed_at": row.pushed_at,
            }
        )
    return details


def group_summary(group: DeviceGroup, now: datetime | None = None) -> dict[str, int]:
    """How many of a group's configured members have applied everything, have a key drifting,
    or wait for the others (one aggregate query): a device counts in its worst key's state."""
    rows = DeviceConfiguration.objects.filter(device=OuterRef("pk"))
    members = affected_devices(group=group).annotate(
        configured=Exists(rows),
        drifting=Exists(drifted(now).filter(device=OuterRef("pk"))),
        waiting=Exists(rows.filter(applied=False)),
    )
    counts = members.filter(configured=True).aggregate(
        drift=Count("pk", filter=Q(drifting=True)),
        pending=Count("pk", filter=Q(waiting=True, drifting=False)),
        applied=Count("pk", filter=Q(waiting=False)),
    )
    return {key: counts[key] for key in ("applied", "pending", "drift")}
