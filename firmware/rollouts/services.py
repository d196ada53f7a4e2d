"""The rollout's control plane before the engine takes over: create (validated whole, written in
one transaction), preview (the dry run), request_start, approve (never by the creator), cancel.

Starting writes every included device's RolloutDevice with ONE INSERT … SELECT over the same
relation the preview reads (firmware.rollouts.assignment), so the two agree device for device.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from devices.models import Device, DeviceGroup
from firmware import delegation, jobs
from firmware.models import FirmwareVersion, JobTemplate
from firmware.rollouts import assignment, control, states, validation
from firmware.rollouts import preview as dry_run
from firmware.rollouts.choices import DeviceOutcome, RolloutKind, RolloutStatus, WaveSelector
from firmware.rollouts.models import Rollout, RolloutDevice, Wave
from fleetportal import versions
from fleetportal.errors import DomainError


class RolloutError(DomainError):
    code = "invalid_rollout"


class RolloutIdTaken(RolloutError):
    field = "rollout_id"
    code = "rollout_id_taken"
    http_status = 409


SelfApproval = control.SelfApproval  # one rule, one error: the start and the gates


class WrongState(RolloutError):
    """states.IllegalTransition as the API shows it: 409 naming the state."""

    field = "status"
    code = "invalid_state_transition"
    http_status = 409


class DeviceTaken(RolloutError):
    """A device joined another active rollout between our SELECT and our INSERT."""

    field = "targets"
    code = "device_in_another_rollout"
    http_status = 409


def _refuse(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


# --- Create ----------------------------------------------------------------------------------


def create_rollout(
    fields: dict[str, Any], *, actor: str, roles: Iterable[str] = (), now: datetime | None = None
) -> Rollout:
    """A draft rollout from the API's fields. `roles`: the creator's role names; a member of a
    FLEETPORTAL_ROLLOUT_APPROVAL_ROLES role always needs a second person's approval."""
    now = now or timezone.now()
    rollout, waves = validation.build(fields, now=now)
    rollout.created_by = actor
    if set(roles) & set(settings.ROLLOUT_APPROVAL_ROLES):
        rollout.approval_required = True
    if Rollout.objects.filter(rollout_id=rollout.rollout_id).exists():
        raise RolloutIdTaken(f"A rollout with the id {rollout.rollout_id!r} exists.")
    _fill_payload(rollout, fields)
    devices, groups = _resolve_targets(fields.get("targets"))
    with transaction.atomic():
        _insert(rollout)
        rollout.target_devices.set(devices)
        rollout.target_groups.set(groups)
        _check_wave_sizes(rollout, waves)
        _check_downgrade(rollout)
        check_window_gateways(rollout)
        for wave in waves:
            wave.rollout = rollout
        Wave.objects.bulk_create(waves)
        states.record(rollout, "created", actor=actor, now=now, rollout_kind=rollout.kind)
    return rollout


def _insert(rollout: Rollout) -> None:
    try:
        with transaction.atomic():
            rollout.save(force_insert=True)
    except IntegrityError as exc:
        raise RolloutIdTaken(f"A rollout with the id {rollout.rollout_id!r} exists.") from exc


def _fill_payload(rollout: Rollout, fields: dict[str, Any]) -> None:
    """Exactly one of firmware or template (+ document_parameters, rendered to check them)."""
    if (fields.get("firmware") is None) == (fields.get("template") is None):
        raise _refuse("firmware", "Give exactly one of firmware or template.")
    if fields.get("firmware") is not None:
        rollout.firmware = FirmwareVersion.objects.filter(pk=fields["firmware"]).first()
        if rollout.firmware is None:
            raise _refuse("firmware", "No such firmware version.")
        if fields.get("document_parameters"):
            raise _refuse("document_parameters", "Only with a template.")
        return
    rollout.template = JobTemplate.objects.filter(template_id=fields["template"]).first()
    if rollout.template is None:
        raise _refuse("template", "No such job template.")
    rollout.document_parameters = fields.get("document_parameters") or {}
    jobs.render_template(rollout.template, rollout.document_parameters)


def _resolve_targets(targets: Any) -> tuple[list[Device], list[DeviceGroup]]:
    if not isinstance(targets, dict) or set(targets) - {"devices", "groups"}:
        raise _refuse("targets", 'Must be {"devices": [device_id…], "groups": [name…]}.')
    device_ids, names = targets.get("devices") or [], targets.get("groups") or []
    for key, items in (("devices", device_ids), ("groups", names)):
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _refuse("targets", f"{key}: must be a list of strings.")
    if len(device_ids) > jobs.MAX_TARGET_DEVICES or len(names) > jobs.MAX_TARGET_GROUPS:
        raise _refuse("targets", "At most 1000 devices and 100 groups; use groups for more.")
    if not device_ids and not names:
        raise _refuse("targets", "A rollout needs at least one device or group.")
    devices = list(Device.objects.filter(device_id__in=device_ids))
    groups = list(DeviceGroup.objects.filter(name__in=names))
    for key, asked, found in (
        ("devices", device_ids, {d.device_id for d in devices}),
        ("groups", names, {g.name for g in groups}),
    ):
        if unknown := sorted(set(asked) - found):
            raise _refuse("targets", f"{key}: unknown: " + ", ".join(unknown[:10]) + ".")
    return devices, groups


def _check_wave_sizes(rollout: Rollout, waves: list[Wave]) -> None:
    """Counts that add up to more than the targets in service are refused (one COUNT)."""
    counts = [wave.count or 0 for wave in waves if wave.selector == WaveSelector.COUNT]
    if not counts:
        return
    total = Device.objects.in_service().filter(assignment.target_condition(rollout)).count()
    taken = 0
    for wave in waves:
        taken += wave.count or 0
        if wave.selector == WaveSelector.COUNT and taken > total:
            raise _refuse(
                "waves",
                f"{wave.number}.count: waves up to this one take {taken} devices; "
                f"the targets have {total}.",
            )


def _check_downgrade(rollout: Rollout) -> None:
    """A firmware older than what some target runs is a downgrade: only as kind rollback."""
    firmware = rollout.firmware
    if firmware is None or rollout.kind == RolloutKind.ROLLBACK:
        return
    newer = [
        version
        for version, key in FirmwareVersion.objects.filter(
            device_type=firmware.device_type
        ).values_list("version", "version_key")
        if key > firmware.version_key and versions.is_version(version)
    ]
    targets = Device.objects.in_service().filter(assignment.target_condition(rollout))
    running = targets.filter(device_type=firmware.device_type, firmware_version__in=newer)
    if newer and running.exists():
        raise _refuse(
            "kind",
            f"{firmware.version} is older than what some targets run (e.g. "
            f"{running.values_list('device_id', flat=True).first()}): a downgrade is a rollout "
            "of kind rollback, with a reason.",
        )


def check_window_gateways(rollout: Rollout) -> None:
    """A window some target's gateway cannot follow is refused: AWS IoT Jobs reads maintenance
    windows in UTC only (firmware.delegation). Checked at creation and again at the start
    (targets may have moved to AWS in between)."""
    if not rollout.window_cron:
        return
    targets = Device.objects.in_service().filter(assignment.target_condition(rollout))
    if refusal := delegation.window_refused(targets, rollout.window_timezone):
        raise _refuse("window", f"window_timezone: {refusal}")


# --- Preview, start, approve, cancel ---------------------------------------------------------


def preview(rollout: Rollout, *, now: datetime) -> dict[str, Any]:
    return dry_run.preview(rollout, now=now)


def request_start(rollout: Rollout, *, actor: str, now: datetime | None = None) -> Rollout:
    """From draft: to awaiting_approval when it needs a second person, else start it."""
    if rollout.approval_required:
        return _move(rollout, RolloutStatus.AWAITING_APPROVAL, actor=actor, now=now)
    return _start(rollout, actor=actor, now=now, reason="started")


def approve(rollout: Rollout, *, actor: str, now: datetime | None = None) -> Rollout:
    """A second person approves: the creator never can. The rollout then starts."""
    now = now or timezone.now()
    if rollout.status != RolloutStatus.AWAITING_APPROVAL:
        raise WrongState(f"Rollout {rollout.rollout_id} is not awaiting approval.")
    # Awaiting approval implies approval_required, so the creator is always refused here.
    if not rollout.may_be_approved_by(actor):
        raise SelfApproval(f"{actor} created rollout {rollout.rollout_id}; someone else approves.")
    with transaction.atomic():
        Rollout.objects.filter(pk=rollout.pk).update(approved_by=actor, approved_at=now)
        rollout.approved_by, rollout.approved_at = actor, now
        states.record(rollout, "approved", actor=actor, now=now)
        return _start(rollout, actor=actor, now=now, reason=f"approved by {actor}")


def cancel(rollout: Rollout, *, actor: str, reason: str) -> Rollout:
    """Before it runs: draft, awaiting approval or scheduled → canceled; its devices are freed.
    A running or paused rollout is aborted instead (control.abort)."""
    if rollout.status in (RolloutStatus.RUNNING, RolloutStatus.PAUSED):
        raise WrongState(f"Rollout {rollout.rollout_id} is {rollout.status}; abort it instead.")
    with transaction.atomic():
        rollout = _move(rollout, RolloutStatus.CANCELED, actor=actor, reason=reason)
        RolloutDevice.objects.filter(rollout=rollout, active=True).update(
            active=False, outcome=DeviceOutcome.CANCELED, reason="rollout canceled"
        )
    return rollout


def _move(rollout: Rollout, target: str, **kwargs: Any) -> Rollout:
    try:
        return states.move(rollout, target, **kwargs)
    except states.IllegalTransition as exc:
        raise WrongState(str(exc)) from exc


def _start(rollout: Rollout, *, actor: str, now: datetime | None, reason: str) -> Rollout:
    """Write the devices (one INSERT … SELECT), count them per wave, move to scheduled (a
    start_at ahead) or running. All or nothing."""
    now = now or timezone.now()
    target = (
        RolloutStatus.SCHEDULED
        if rollout.start_at and rollout.start_at > now
        else RolloutStatus.RUNNING
    )
    check_window_gateways(rollout)
    with transaction.atomic():
        moved = _move(rollout, target, actor=actor, reason=reason, now=now)
        waves = list(moved.waves.all())
        _write_devices(moved, waves, now)
        _count_waves(moved, waves)
        _refresh_statistics()
    return moved


def _refresh_statistics() -> None:
    """ANALYZE the devices table after the start's bulk INSERT. The new wave ids are in no
    statistics yet (autovacuum analyzes a minute later at best, never where it is off), so the
    planner takes a wave for a handful of rows and joins outcomes.follow's UPDATE by a nested
    loop over the whole wave per execution: 14+ minutes at 100,000 devices instead of seconds
    (bench/rollouts.py). ANALYZE samples a fixed number of rows: ~0.1 s whatever the size."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {RolloutDevice._meta.db_table}")


def _write_devices(rollout: Rollout, waves: list[Wave], now: datetime) -> None:
    rel = assignment.relation(rollout, waves, now)
    table, wave_table = RolloutDevice._meta.db_table, Wave._meta.db_table
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            zone, zone_params = assignment.zones(rollout, rel, cursor)
            cursor.execute(
                f"INSERT INTO {table} (rollout_id, device_id, wave_id, position, time_zone, "  # noqa: S608
                "outcome, failure, reason, retries_used, active) "
                f"SELECT %s, d.id, w.id, d.position, {zone}, %s, '', '', 0, TRUE "
                f"FROM ({rel.sql}) AS d JOIN {wave_table} w "
                "ON w.rollout_id = %s AND w.number = d.wave",
                [rollout.pk, *zone_params, DeviceOutcome.ASSIGNED, *rel.params, rollout.pk],
            )
    except IntegrityError as exc:
        raise DeviceTaken(
            "A target device joined another active rollout while this one started; "
            "look at the preview again and start again."
        ) from exc


def _count_waves(rollout: Rollout, waves: list[Wave]) -> None:
    """Wave.device_count for every wave in one UPDATE; a wave left with no device stops the
    start (its filter matched nothing the earlier waves and exclusions left)."""
    table, wave_table = RolloutDevice._meta.db_table, Wave._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {wave_table} w SET device_count = coalesce(c.n, 0) "  # noqa: S608
            f"FROM {wave_table} w2 LEFT JOIN (SELECT wave_id, count(*) AS n FROM {table} "
            "WHERE rollout_id = %s GROUP BY wave_id) c ON c.wave_id = w2.id "
            "WHERE w.id = w2.id AND w.rollout_id = %s RETURNING w.number, w.device_count",
            [rollout.pk, rollout.pk],
        )
        counts = dict(cursor.fetchall())
    if empty := sorted(number for number, count in counts.items() if count == 0):
        raise _refuse(
            "waves",
            f"{empty[0]}: no device left for this wave after the exclusions and the waves "
            "before it (see the preview).",
        )
    for wave in waves:
        wave.device_count = counts.get(wave.number, 0)
