"""The jobs control plane (AWS IoT Jobs' CreateJob, CancelJob, CancelJobExecution, DescribeJob):
what the admin and the REST API call. The engine (firmware/engine.py) does the rest over time.

A job's targets are fixed as JobTarget rows when it is created (one INSERT … SELECT over the
devices and the groups' members, or over the devices a device-list filter matches then);
executions are created later, when the engine releases them.
Every refusal is a ValidationError naming the field (or a JobError), raised before anything is
written.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from devices import device_list
from devices.models import Device, DeviceEvent, DeviceGroup
from firmware import configs, delegation, downloads, executions, notifications
from firmware.choices import ExecutionStatus, JobStatus, TargetSelection
from firmware.models import FirmwareVersion, Job, JobExecution, JobTarget, JobTemplate
from firmware.protocol import firmware_runs
from fleetportal import versions
from fleetportal.errors import DomainError

MAX_DOCUMENT_BYTES = 32 * 1024  # AWS: a job document is at most 32 KB
MAX_PARAMETERS = 10  # AWS: up to 10 substitution variables per document
MAX_TARGET_DEVICES = 1000
MAX_TARGET_GROUPS = 100
PLACEHOLDER = re.compile(r"\$\{parameters\.([A-Za-z0-9_-]+)\}")
ACTIVE = (JobStatus.IN_PROGRESS, JobStatus.SCHEDULED)


class JobError(DomainError):
    code = "invalid_job"


class JobIdTaken(JobError):
    field = "job_id"
    code = "job_id_taken"
    http_status = 409


class JobNotActive(JobError):
    field = "status"
    code = "invalid_state_transition"
    http_status = 409


class ExecutionNotCancelable(JobError):
    field = "status"
    code = "invalid_state_transition"
    http_status = 409


class ExecutionVersionMismatch(JobError):
    field = "expected_version"
    code = "version_mismatch"
    http_status = 409


def _refuse(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


# --- Documents -------------------------------------------------------------------------------


def check_document(document: Any, field: str = "document") -> dict[str, Any]:
    if not isinstance(document, dict) or not document:
        raise _refuse(field, "Must be a non-empty JSON object.")
    if len(orjson.dumps(document)) > MAX_DOCUMENT_BYTES:
        raise _refuse(field, f"Must be at most {MAX_DOCUMENT_BYTES} bytes as JSON.")
    return document


def render_template(template: JobTemplate, parameters: Any) -> dict[str, Any]:
    """The template's document with each ${parameters.name} replaced by its value."""
    if not isinstance(parameters, dict) or len(parameters) > MAX_PARAMETERS:
        raise _refuse("document_parameters", f"Must be an object of at most {MAX_PARAMETERS}.")
    if any(not isinstance(v, str) for v in parameters.values()):
        raise _refuse("document_parameters", "Every value must be a string.")
    used = set(PLACEHOLDER.findall(orjson.dumps(template.document).decode()))
    if missing := sorted(used - set(parameters)):
        raise _refuse("document_parameters", "Missing: " + ", ".join(missing) + ".")
    if unknown := sorted(set(parameters) - used):
        raise _refuse("document_parameters", "Not in the template: " + ", ".join(unknown) + ".")
    return check_document(_substitute(template.document, parameters), "document_parameters")


def _substitute(value: Any, parameters: dict[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: parameters[m.group(1)], value)
    if isinstance(value, list):
        return [_substitute(item, parameters) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, parameters) for key, item in value.items()}
    return value


def _download_url(version: FirmwareVersion) -> str:
    """Where devices fetch the artifact, as stored in the job: the operator's URL, or the HTTP
    device API's artifact (with the device's JWT). Each device is handed a URL signed for it
    when the document is delivered (delivered_document)."""
    if version.file_url:
        return version.file_url
    path = reverse("device-firmware-artifact", args=[version.pk])
    return f"{settings.PUBLIC_URL.rstrip('/')}{path}"


def delivered_document(execution: JobExecution) -> dict[str, Any]:
    """The job document as a device receives it (firmware.documents.document_renderer): a
    firmware job's artifact URL is replaced by one signed for that device, valid
    FIRMWARE_URL_SECONDS from now, so a job that runs for days never hands out a dead link."""
    document = execution.job.document
    firmware = execution.job.firmware
    if firmware is None or not signs_per_device(execution.job):
        return document
    # A wave's device takes one of its rollout's download slots and counts toward its bytes.
    url = downloads.signed_url(firmware, execution.device, rollout=execution.job.rollout_id)
    return with_artifact_url(document, url)


def with_artifact_url(document: dict[str, Any], url: str) -> dict[str, Any]:
    """A firmware job's document with its artifact at `url` (the firmware block and AWS's OTA
    files both name it)."""
    delivered = {**document, "firmware": {**document["firmware"], "url": url}}
    ota = document.get("afr_ota")
    if isinstance(ota, dict) and isinstance(ota.get("files"), list):
        files = [
            {**entry, "update_data_url": url} if isinstance(entry, dict) else entry
            for entry in ota["files"]
        ]
        delivered["afr_ota"] = {**ota, "files": files}
    return delivered


def signs_per_device(job: Job) -> bool:
    """Does each device get this job's document with a URL signed for it (a firmware job whose
    artifact the portal hosts), so that no two devices get the same document?"""
    firmware = job.firmware
    return (
        firmware is not None
        and not firmware.file_url
        and isinstance(job.document.get("firmware"), dict)
    )


def firmware_document(version: FirmwareVersion) -> dict[str, Any]:
    """A firmware job's document: the version, where to get it, how to check it, and AWS's OTA
    block (`afr_ota`) so devices running AWS's OTA library recognise the job."""
    url = _download_url(version)
    return {
        "operation": "firmware_update",
        "firmware": {
            "device_type": version.device_type,
            "version": version.version,
            "security_version": version.security_version,
            "url": url,
            "size": version.file_size,
            "sha256": version.checksum,
            "manifest": version.manifest,
            "signature": version.manifest_signature,
            "signing_key_id": version.signing_key_id,
        },
        "afr_ota": {
            "protocols": ["HTTP"],
            "streamname": "",
            "files": [
                {
                    "filepath": f"{version.device_type}-{version.version}.bin",
                    "filesize": version.file_size,
                    "fileid": 0,
                    "certfile": "",
                    "update_data_url": url,
                    "auth_scheme": "",
                    "sig-sha256-ecdsa": version.manifest_signature,
                }
            ],
        },
    }


# --- Targets ---------------------------------------------------------------------------------


TARGETS_SHAPE = (
    'Must be {"devices": [device_id…], "groups": [name…]} or {"filter": "<the device list\'s '
    'query string>"}.'
)


def _resolve_targets(targets: Any) -> tuple[list[Device], list[DeviceGroup]]:
    if not isinstance(targets, dict) or set(targets) - {"devices", "groups"}:
        raise _refuse("targets", TARGETS_SHAPE)
    device_ids, names = targets.get("devices") or [], targets.get("groups") or []
    for key, items, limit in (
        ("devices", device_ids, MAX_TARGET_DEVICES),
        ("groups", names, MAX_TARGET_GROUPS),
    ):
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _refuse("targets", f"{key}: must be a list of strings.")
        if len(items) > limit:
            raise _refuse("targets", f"{key}: at most {limit}.")
    if not device_ids and not names:
        raise _refuse("targets", "A job needs at least one device or group.")
    devices = list(Device.objects.filter(device_id__in=device_ids))
    groups = list(DeviceGroup.objects.filter(name__in=names))
    _refuse_unknown("devices", device_ids, {d.device_id for d in devices})
    _refuse_unknown("groups", names, {g.name for g in groups})
    if gone := sorted(d.device_id for d in devices if d.is_decommissioned):
        raise _refuse("targets", "devices: decommissioned: " + ", ".join(gone[:10]) + ".")
    return devices, groups


@dataclass(frozen=True)
class FilterTargets:
    """A device-list filter as a job's targets: its parameters, how they read, and how many
    devices in service match now (exact: the cap refuses anything above it)."""

    params: dict[str, str]
    description: str
    count: int


def filter_targets(text: Any) -> FilterTargets:
    """Check a device list's query string as a job's targets: known parameters and values, at
    least one, and at most settings.BULK_ACTION_MAX_DEVICES devices in service (counted up to
    one more than the cap, never the whole fleet). Refusals name `targets` ("filter: …")."""
    if not isinstance(text, str):
        raise _refuse("targets", "filter: must be the device list's query string, as text.")
    cap = settings.BULK_ACTION_MAX_DEVICES
    try:
        params = device_list.parse_query(text)
        if not params:
            raise device_list.BadListFilter(
                "Choose at least one filter or a search: a job on every device is no filter."
            )
        count = filtered_targets(params).order_by().values("pk")[: cap + 1].count()
        description = device_list.describe(params)
    except device_list.BadListFilter as exc:
        raise _refuse("targets", f"filter: {exc}") from None
    if count > cap:
        raise _refuse(
            "targets",
            f"filter: A job on a filter takes at most {cap:,} devices; this filter matches "
            "more. Narrow the list first, or target a group.",
        )
    if not count:
        raise _refuse("targets", "filter: The filter matches no device in service.")
    return FilterTargets(params, description, count)


def filter_description(params: Mapping[str, str]) -> str:
    """A stored target filter as it reads; its query string if it no longer reads (a group
    deleted since)."""
    try:
        return device_list.describe(params)
    except device_list.BadListFilter:
        return device_list.query_string(params)


def filtered_targets(params: Mapping[str, str]) -> QuerySet:
    """The devices in service a device-list filter matches now (the list's own query)."""
    return device_list.filtered_devices(params).in_service()


def _refuse_unknown(key: str, asked: list[str], found: set[str]) -> None:
    if unknown := sorted(set(asked) - found):
        raise _refuse("targets", f"{key}: unknown: " + ", ".join(unknown[:10]) + ".")


def membership(job: Job, devices=None, groups=None) -> Q:
    """The condition on Device for the job's targets now (devices named, groups' members)."""
    devices = job.target_devices.all() if devices is None else devices
    groups = job.target_groups.all() if groups is None else groups
    condition = Q(pk__in=[d.pk for d in devices])
    for group in groups:
        condition |= group.membership()
    return condition


def compatible(version: FirmwareVersion) -> Q:
    """Devices that may run `version`: its device type and, if it names any, hardware."""
    condition = Q(device_type=version.device_type)
    if version.hardware_versions:
        condition &= Q(hardware_version__in=version.hardware_versions)
    return condition


def target_devices(job: Job, condition: Q) -> QuerySet:
    queryset = Device.objects.in_service().filter(condition)
    if job.firmware_id is not None:
        queryset = queryset.filter(compatible(job.firmware))
    return queryset


def add_targets(job: Job, devices: QuerySet, *, late: bool) -> int:
    """Insert the devices as the job's targets (one INSERT … SELECT; known ones skipped);
    returns how many were new and counts them on the job."""
    select, params = devices.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {JobTarget._meta.db_table} (job_id, device_id, late, time_zone) "  # noqa: S608
            f"SELECT %s, sub.device, %s, '' FROM ({select}) AS sub(device) "
            "ON CONFLICT DO NOTHING",
            [job.pk, late, *params],
        )
        added = cursor.rowcount
    if added:
        Job.objects.filter(pk=job.pk).update(target_count=job.target_count + added)
        job.target_count += added
    return added


def add_positioned_targets(job: Job, select: str, params: list[Any]) -> int:
    """A rollout wave's targets: `select` yields (device pk, position, time zone) rows, inserted
    with one INSERT … SELECT however many (never an M2M of 100,000 devices)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {JobTarget._meta.db_table} "  # noqa: S608
            "(job_id, device_id, late, position, time_zone) "
            f"SELECT %s, sub.device, false, sub.position, sub.zone "
            f"FROM ({select}) AS sub(device, position, zone) ON CONFLICT DO NOTHING",
            [job.pk, *params],
        )
        added = cursor.rowcount
    Job.objects.filter(pk=job.pk).update(target_count=job.target_count + added)
    job.target_count += added
    return added


# --- Firmware rules --------------------------------------------------------------------------


def _check_firmware_targets(version: FirmwareVersion, devices: QuerySet, downgrade: bool) -> None:
    """Refuse devices of another type or hardware, and (unless allowed) a lower security
    version than the one a device runs now — found set-wise, naming the first few."""
    wrong = devices.exclude(compatible(version)).values_list("device_id", flat=True)[:10]
    if wrong:
        hardware = ", ".join(version.hardware_versions)
        wanted = version.device_type + (f" with hardware {hardware}" if hardware else "")
        raise _refuse("targets", f"Not {wanted}: " + ", ".join(wrong) + ".")
    if downgrade:
        return
    lower = downgraded(version, devices)
    if lower:
        raise _refuse(
            "firmware",
            f"Security version {version.security_version} is lower than what these devices run: "
            + ", ".join(lower)
            + ". Set allow_downgrade with a downgrade_reason to send it anyway.",
        )


def downgraded(version: FirmwareVersion, devices: QuerySet) -> list[str]:
    """Up to ten of `devices` that run a version with a higher security version than `version`
    (the admin's reach preview names them too)."""
    running = FirmwareVersion.objects.filter(
        device_type=version.device_type, security_version__gt=version.security_version
    ).values_list("version", flat=True)
    higher = [v for v in running if versions.is_version(v)]
    if not higher:
        return []
    return list(
        devices.filter(firmware_version__in=higher).values_list("device_id", flat=True)[:10]
    )


# --- Create ----------------------------------------------------------------------------------

CONFIG_FIELDS = {
    "rollout": "rollout_config",
    "abort": "abort_config",
    "timeout": "timeout_config",
    "retry": "retry_config",
    "scheduling": "scheduling_config",
}


def create_job(fields: dict[str, Any], *, actor: str, now: datetime | None = None) -> Job:
    """CreateJob. `fields` are the API's (job_id, description, targets, one of document /
    firmware / template + document_parameters, target_selection, rollout, abort, timeout,
    retry, scheduling, allow_downgrade, downgrade_reason)."""
    now = now or timezone.now()
    job = Job(
        job_id=fields.get("job_id", ""),
        description=fields.get("description") or "",
        target_selection=fields.get("target_selection") or TargetSelection.SNAPSHOT,
        created_by=actor,
        created_at=now,
    )
    job.full_clean(exclude=["document", "target_devices", "target_groups"], validate_unique=False)
    if Job.objects.filter(job_id=job.job_id).exists():
        raise JobIdTaken(f"A job with the id {job.job_id!r} exists.")
    _fill_document(job, fields)
    _fill_configs(job, fields, now)
    devices, groups, reached = _targets(job, fields.get("targets"))
    if job.firmware_id is not None:
        _check_firmware_targets(job.firmware, reached, _downgrade(job, fields, actor))
    # A job with a start time waits for it; without one (windows or an end time only), it runs.
    scheduled = "start_time" in job.scheduling_config
    job.status = JobStatus.SCHEDULED if scheduled else JobStatus.IN_PROGRESS
    with transaction.atomic():
        _insert(job)
        job.target_devices.set(devices)
        job.target_groups.set(groups)
        if job.firmware_id is not None:
            reached = reached.filter(compatible(job.firmware))
        add_targets(job, reached, late=False)
    return job


def _targets(job: Job, targets: Any) -> tuple[list[Device], list[DeviceGroup], QuerySet]:
    """(devices named, groups named, the devices in service they reach now). A device-list
    filter names neither: its matching devices are the targets, a snapshot, kept on the job
    (target_filter) to say how they were chosen."""
    if not (isinstance(targets, dict) and "filter" in targets):
        devices, groups = _resolve_targets(targets)
        reached = Device.objects.in_service().filter(membership(job, devices, groups))
        return devices, groups, reached
    if set(targets) - {"devices", "groups", "filter"}:
        raise _refuse("targets", TARGETS_SHAPE)
    if targets.get("devices") or targets.get("groups"):
        raise _refuse("targets", "filter: give it alone, without devices or groups.")
    if job.target_selection == TargetSelection.CONTINUOUS:
        raise _refuse(
            "target_selection",
            "A device-list filter is a snapshot: the devices it matches now are the targets. "
            "For devices that match later, save the filter as a dynamic group and target the "
            "group continuously.",
        )
    chosen = filter_targets(targets["filter"])
    job.target_filter = chosen.params
    return [], [], filtered_targets(chosen.params)


def _insert(job: Job) -> None:
    """Save the new job; one created with the same id since the check above loses the race
    as it would have lost the check (JobIdTaken, not the database's IntegrityError)."""
    try:
        with transaction.atomic():
            job.save(force_insert=True)
    except IntegrityError as exc:
        if Job.objects.filter(job_id=job.job_id).exists():
            raise JobIdTaken(f"A job with the id {job.job_id!r} exists.") from exc
        raise


def _fill_document(job: Job, fields: dict[str, Any]) -> None:
    given = [key for key in ("document", "firmware", "template") if fields.get(key) is not None]
    if len(given) != 1:
        raise _refuse("document", "Give exactly one of document, firmware or template.")
    if "document" in given:
        job.document = check_document(fields["document"])
    elif "firmware" in given:
        job.firmware = FirmwareVersion.objects.filter(pk=fields["firmware"]).first()
        if job.firmware is None:
            raise _refuse("firmware", "No such firmware version.")
        job.document = firmware_document(job.firmware)
    else:
        job.template = JobTemplate.objects.filter(template_id=fields["template"]).first()
        if job.template is None:
            raise _refuse("template", "No such job template.")
        job.document_parameters = fields.get("document_parameters") or {}
        job.document = render_template(job.template, job.document_parameters)
    if fields.get("document_parameters") and job.template is None:
        raise _refuse("document_parameters", "Only with a template.")


def _fill_configs(job: Job, fields: dict[str, Any], now: datetime) -> None:
    given = {key: fields.get(key) for key in CONFIG_FIELDS}
    if job.template is not None:
        given = _inherit(given, job.template)
    if errors := configs.validate(given, now=now):
        raise ValidationError(errors)
    for key, attribute in CONFIG_FIELDS.items():
        setattr(job, attribute, given[key] or {})


def _inherit(given: dict[str, Any], template: JobTemplate) -> dict[str, Any]:
    """The job's configs with the template's as defaults: a config the job does not give is the
    template's. The template's scheduling holds only maintenance windows, so a job that gives a
    scheduling (a start time, say) keeps the template's windows unless it names its own."""
    given = dict(given)
    for key, attribute in CONFIG_FIELDS.items():
        if given[key] is None:
            given[key] = getattr(template, attribute) or None
    windows = template.scheduling_config.get("maintenance_windows")
    scheduling = given["scheduling"]
    if windows and isinstance(scheduling, dict) and "maintenance_windows" not in scheduling:
        given["scheduling"] = {**scheduling, "maintenance_windows": windows}
    return given


def check_template_configs(values: dict[str, Any]) -> dict[str, list[str]]:
    """A job template's configs as its model fields hold them ({"rollout_config": …}, empty =
    none), checked as a job's (scheduling: windows only): {model field: [messages]}."""
    given = {key: values.get(attribute) or None for key, attribute in CONFIG_FIELDS.items()}
    errors = configs.validate(given, now=timezone.now(), template=True)
    return {CONFIG_FIELDS[key]: problems for key, problems in errors.items()}


def _downgrade(job: Job, fields: dict[str, Any], actor: str) -> bool:
    if not fields.get("allow_downgrade"):
        return False
    reason = (fields.get("downgrade_reason") or "").strip()
    if not reason:
        raise _refuse("downgrade_reason", "Say why the downgrade is allowed.")
    job.downgrade_allowed_by, job.downgrade_reason = actor, reason[:500]
    return True


# --- Cancel ----------------------------------------------------------------------------------


def cancel_job(
    job: Job,
    *,
    force: bool = False,
    comment: str = "",
    reason_code: str = "",
    actor: str,
    now: datetime | None = None,
) -> Job:
    """CancelJob: QUEUED executions are CANCELED, IN_PROGRESS ones too with `force`; nothing
    more is released. A canceled job may be cancelled again with force (AWS). `now`: the
    caller's clock (a tick's), so the cancellation carries the time the tick acted at."""
    now = now or timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        again = job.status == JobStatus.CANCELED and force and not job.force_canceled
        if job.status not in ACTIVE and not again:
            raise JobNotActive(f"The job is {job.status}; only an active job can be cancelled.")
        job.status, job.force_canceled = JobStatus.CANCELED, job.force_canceled or force
        job.comment = comment[:2028] or job.comment
        job.reason_code = reason_code[:128] or job.reason_code
        job.canceled_by, job.completed_at = actor, job.completed_at or now
        job.save()
        statuses = [ExecutionStatus.QUEUED] + ([ExecutionStatus.IN_PROGRESS] if force else [])
        cancel_executions(
            JobExecution.objects.filter(job=job, status__in=statuses), now=now, actor=actor
        )
        delegation.job_canceled(job, force=force)
    return job


def cancel_executions(
    executions_: QuerySet, *, now: datetime | None = None, actor: str = "system"
) -> int:
    """Cancel the (lockable) executions of the query and tell their devices; returns how many."""
    now = now or timezone.now()
    # In pk order, as every writer of executions locks them (the protocol, the bridge's jobs
    # batch): the model's default order (queued_at) could deadlock with them.
    locked = executions_.select_for_update().order_by("pk")
    rows = list(locked.values_list("pk", "device_id", "status"))
    if not rows:
        return 0
    devices = {device for _, device, _ in rows}
    before = notifications.heads(devices)
    JobExecution.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
        status=ExecutionStatus.CANCELED,
        version_number=F("version_number") + 1,
        last_updated_at=now,
        followed_up_at=now,
    )
    notifications.send_changes(devices, before)
    ran = [pk for pk, _, status in rows if status == ExecutionStatus.IN_PROGRESS]
    firmware_runs.ended_by_service(ran, actor=actor)
    return len(rows)


def cancel_execution(
    execution: JobExecution,
    *,
    force: bool = False,
    expected_version: int | None = None,
    status_details: dict[str, str] | None = None,
    actor: str,
) -> JobExecution:
    """CancelJobExecution: a QUEUED execution, or an IN_PROGRESS one with force."""
    with transaction.atomic():
        execution = JobExecution.objects.select_for_update().get(pk=execution.pk)
        if expected_version is not None and expected_version != execution.version_number:
            raise ExecutionVersionMismatch(
                f"The execution is at version {execution.version_number}, not {expected_version}."
            )
        if not executions.may_cancel(execution.status, force=force):
            hint = " (use force)" if execution.status == ExecutionStatus.IN_PROGRESS else ""
            message = f"A {execution.status} execution cannot be cancelled{hint}."
            raise ExecutionNotCancelable(message)
        if status_details:
            JobExecution.objects.filter(pk=execution.pk).update(
                status_details={**execution.status_details, **status_details}
            )
        cancel_executions(JobExecution.objects.filter(pk=execution.pk), actor=actor)
        DeviceEvent.objects.create(
            device_id=execution.device_id,
            event_type="job_execution_canceled",
            event_data={
                "job_id": execution.job.job_id,
                "force": force,
                "execution_number": execution.execution_number,
            },
            actor=actor,
        )
    execution.refresh_from_db()
    return execution


def cancel_for_devices(device_pks: Iterable[Any]) -> int:
    """Decommissioned devices: their pending executions are force-cancelled and their targets
    not released any more."""
    device_pks = list(device_pks)
    JobTarget.objects.filter(device_id__in=device_pks, released_at__isnull=True).delete()
    pending = JobExecution.objects.filter(device_id__in=device_pks, status__in=executions.PENDING)
    return cancel_executions(pending)


# --- Describe --------------------------------------------------------------------------------

COUNTED = {
    ExecutionStatus.CANCELED: "number_of_canceled_things",
    ExecutionStatus.SUCCEEDED: "number_of_succeeded_things",
    ExecutionStatus.FAILED: "number_of_failed_things",
    ExecutionStatus.REJECTED: "number_of_rejected_things",
    ExecutionStatus.QUEUED: "number_of_queued_things",
    ExecutionStatus.IN_PROGRESS: "number_of_in_progress_things",
    ExecutionStatus.REMOVED: "number_of_removed_things",
    ExecutionStatus.TIMED_OUT: "number_of_timed_out_things",
}


def job_process_details(job: Job) -> dict[str, int]:
    """AWS's jobProcessDetails: executions per status (one GROUP BY). A firmware execution
    reported SUCCEEDED counts as succeeded only once confirmed; until then it is under
    number_of_awaiting_confirmation_things. Retried attempts are counted too, as AWS does."""
    details = dict.fromkeys([*COUNTED.values(), "number_of_awaiting_confirmation_things"], 0)
    awaiting = Q(status=ExecutionStatus.SUCCEEDED, confirmed_at__isnull=True)
    rows = (
        JobExecution.objects.filter(job=job)
        .values("status")
        .annotate(count=Count("pk"), awaiting=Count("pk", filter=awaiting))
        .order_by()
    )
    for row in rows:
        pending_confirmation = row["awaiting"] if job.firmware_id is not None else 0
        details[COUNTED[row["status"]]] += row["count"] - pending_confirmation
        details["number_of_awaiting_confirmation_things"] += pending_confirmation
    details["number_of_unreleased_things"] = max(0, job.target_count - job.released_count)
    return details
