"""Import of a fleet that is on AWS IoT Core already: its thing groups become static groups,
its things devices on the AWS gateway (attributes back into the device's fields), their
certificates credentials the portal knows (without private keys: AWS never has them either)
and their classic shadows the portal's, with AWS's document and version.

An import is a FleetImport row worked by a Celery task a page of ListThings at a time (250
things): AWS's per-thing reads (principals, certificates, shadow) run a few at once, then one
transaction writes the page — devices, events, credentials, shadows, sync states — and the next
page's token, so a worker that dies resumes at the page it was on (fleetportal.resumable) and an
import run twice imports nothing twice. A thing whose device id belongs to a device on another
gateway, or whose fields the registry refuses, is skipped and listed with the reason.

AWS has no notion of one static group per device: a thing in several thing groups joins the
first of them by name. Dynamic thing groups are not imported (they need fleet indexing).
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from django.db import transaction
from django.utils import timezone

from aws_gateway import client, faults, identity, sync_state, things
from aws_gateway.choices import SyncState
from aws_gateway.models import FleetImport, RegisteredCertificate, ThingSync
from aws_gateway.wiring import AWS
from devices import groups, services
from devices.choices import BulkJobStatus, CredentialStatus, DeviceStatus
from devices.models import Device, DeviceCredential, DeviceGroup
from fleetportal import resumable
from shadows.models import Shadow

logger = logging.getLogger(__name__)

PAGE_SIZE = 250
READS_IN_FLIGHT = 10  # botocore keeps 10 connections per client
SKIPPED_KEPT = 100
REASON = "imported from AWS IoT Core"


def start(*, actor: str, with_certificates: bool = True, with_shadows: bool = True) -> FleetImport:
    """Queue an import; its task starts after commit."""
    job = FleetImport(
        created_by=actor, with_certificates=with_certificates, with_shadows=with_shadows
    )
    job.save()
    queue(job)
    return job


def queue(job: FleetImport) -> None:
    """Run a saved import (new, failed or stalled) from where it stands, after commit."""
    from aws_gateway import tasks

    FleetImport.objects.filter(pk=job.pk).update(status=BulkJobStatus.QUEUED, finished_at=None)
    transaction.on_commit(lambda: tasks.run_fleet_import.delay(str(job.pk)))


def run(pk: str | UUID, *, page_size: int = PAGE_SIZE, reads: int = READS_IN_FLIGHT) -> FleetImport:
    """Work an import from where it stands to its end (or its first AWS failure)."""
    job = _claim(pk)
    if job.status != BulkJobStatus.RUNNING:
        return job
    iot = client.client("iot")
    try:
        memberships = _import_groups(iot, job)
        with ThreadPoolExecutor(max_workers=reads) as pool:
            while True:
                if not _import_page(iot, pool, job, memberships, page_size):
                    return FleetImport.objects.get(pk=job.pk)  # another worker has it
                if not job.next_token:
                    break
    except faults.AWS_ERRORS as exc:
        logger.warning("The import %s stopped: %s", job.pk, exc)
        return _end(job, BulkJobStatus.FAILED, faults.describe(exc))
    return _end(job, BulkJobStatus.FINISHED)


def _claim(pk: str | UUID) -> FleetImport:
    with transaction.atomic():
        job = FleetImport.objects.select_for_update().get(pk=pk)
        if job.status in (BulkJobStatus.QUEUED, BulkJobStatus.RUNNING):
            job.status, job.heartbeat_at, job.error = BulkJobStatus.RUNNING, timezone.now(), ""
            job.save(update_fields=["status", "heartbeat_at", "error"])
    return job


def _end(job: FleetImport, status: str, error: str = "") -> FleetImport:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    return job


def _claim_stalled(cutoff: datetime) -> list[str]:
    return resumable.claim_stalled_rows(FleetImport, cutoff)


def _resume_stalled(pk: str) -> None:
    from aws_gateway import tasks

    tasks.run_fleet_import.delay(pk)


RESUMABLE = resumable.JobKind("AWS fleet import", _claim_stalled, _resume_stalled)


# -- thing groups ---------------------------------------------------------------------------------


def _import_groups(iot: Any, job: FleetImport) -> dict[str, DeviceGroup]:
    """Static groups for the thing groups (created once), and each thing's group by name."""
    names = sorted(
        group["groupName"]
        for page in iot.get_paginator("list_thing_groups").paginate()
        for group in page["thingGroups"]
    )
    portal = {group.name: group for group in DeviceGroup.objects.filter(name__in=names)}
    for name in names:
        if name not in portal:
            portal[name] = groups.create_group({"name": name}, actor=job.created_by)
            job.groups_created += 1
    if not job.groups_done:
        job.groups_done = True
        job.save(update_fields=["groups_done", "groups_created"])
    memberships: dict[str, DeviceGroup] = {}
    for name in names:
        if portal[name].is_dynamic:
            continue
        paginator = iot.get_paginator("list_things_in_thing_group")
        for page in paginator.paginate(thingGroupName=name):
            for thing in page["things"]:
                memberships.setdefault(thing, portal[name])
    return memberships


# -- a page of things -----------------------------------------------------------------------------


@dataclass
class Extras:
    """What AWS holds about one thing beyond ListThings: its certificates and classic shadow."""

    certificates: list[dict[str, Any]] = field(default_factory=list)
    shadow: dict[str, Any] | None = None


def _import_page(
    iot: Any, pool: ThreadPoolExecutor, job: FleetImport, memberships: dict, page_size: int
) -> bool:
    """Import the page at the job's token; False if another worker took the job meanwhile."""
    token = job.next_token
    page = iot.list_things(maxResults=page_size, **({"nextToken": token} if token else {}))
    return import_things(pool, job, memberships, page["things"], page.get("nextToken") or "")


def import_things(
    pool: ThreadPoolExecutor, job: FleetImport, memberships: dict, listed: list, next_token: str
) -> bool:
    """Import these listed things in one transaction, then record `next_token` as where the job
    stands; False (nothing written) if another worker moved the job on meanwhile."""
    token = job.next_token
    known = set(
        RegisteredCertificate.objects.filter(
            credential__device__device_id__in=[t["thingName"] for t in listed]
        ).values_list("certificate_id", flat=True)
    )
    extras = dict(pool.map(lambda thing: _read_extras(job, thing["thingName"], known), listed))
    with transaction.atomic(), sync_state.importing():
        # One worker per page: a resumed job and its late original never both write one.
        locked = FleetImport.objects.select_for_update().get(pk=job.pk)
        if locked.next_token != token or locked.pages != job.pages:
            return False
        devices = _devices(job, listed, memberships)
        _import_certificates(job, devices, extras)
        _import_shadows(job, devices, extras)
        _mark_synced(devices, {t["thingName"]: t for t in listed})
        job.next_token = next_token
        job.pages += 1
        job.things_seen += len(listed)
        job.heartbeat_at = timezone.now()
        job.save()
    return True


def _read_extras(job: FleetImport, name: str, known: set[str]) -> tuple[str, Extras]:
    iot, extras = client.client("iot"), Extras()
    if job.with_certificates:
        principals = iot.list_thing_principals(thingName=name).get("principals", [])
        ids = [arn.rsplit("/", 1)[1] for arn in principals if ":cert/" in arn]
        extras.certificates = [
            iot.describe_certificate(certificateId=cid)["certificateDescription"]
            for cid in ids
            if cid not in known
        ]
    if job.with_shadows:
        try:
            answer = client.client("iot-data").get_thing_shadow(thingName=name)
        except faults.AWS_ERRORS as exc:
            if not faults.is_not_found(exc):
                raise
        else:
            extras.shadow = orjson.loads(answer["payload"].read())
    return name, extras


def _devices(job: FleetImport, listed: list[dict], memberships: dict) -> dict[str, Device]:
    """The page's devices on the AWS gateway by thing name: new ones registered, existing ones
    updated from their attributes; the rest skipped with the reason."""
    names = [thing["thingName"] for thing in listed]
    existing = {d.device_id: d for d in Device.objects.filter(device_id__in=names)}
    found: dict[str, Device] = {}
    new_rows = []
    for thing in listed:
        name, fields = thing["thingName"], things.device_fields(thing)
        fields["group"] = memberships.get(name)
        device = existing.get(name)
        if device is None:
            new_rows.append({**fields, "gateway": AWS})
        elif device.gateway != AWS:
            _skip(job, name, f"device {name} is on the {device.gateway} gateway")
        else:
            found[name] = _update(job, device, fields)
    for fields, result in zip(
        new_rows, services.register_devices(new_rows, actor=job.created_by), strict=True
    ):
        if isinstance(result, Device):
            found[result.device_id] = result
            job.devices_created += 1
        else:
            _skip(job, fields["device_id"], _why(result))
    return found


def _update(job: FleetImport, device: Device, fields: dict[str, Any]) -> Device:
    fields = {**fields, "metadata": {**device.metadata, **fields["metadata"]}}
    changes = {
        name: value
        for name, value in fields.items()
        if name != "device_id" and getattr(device, name) != value and name in Device.MUTABLE_FIELDS
    }
    if not changes or device.is_decommissioned:
        return device
    job.devices_updated += 1
    return services.update_device(device, changes, actor=job.created_by)


def _why(error: Exception) -> str:
    messages = getattr(error, "message_dict", None)
    if messages:
        return "; ".join(f"{name}: {' '.join(texts)}" for name, texts in messages.items())
    return str(error)


def _skip(job: FleetImport, thing: str, why: str) -> None:
    if len(job.skipped) < SKIPPED_KEPT:
        job.skipped.append({"thing": thing, "why": why})


# -- certificates ---------------------------------------------------------------------------------


def _import_certificates(job: FleetImport, devices: dict[str, Device], extras: dict) -> None:
    """Credentials for the things' ACTIVE and REVOKED certificates (others are left out), linked
    to AWS's certificate and to who signed it (the portal's CA, or AWS: fleet provisioning's);
    a device registered by this import with an active one is active."""
    rows, links = [], []
    for name, device in devices.items():
        for description in extras[name].certificates:
            credential = _credential(device, description)
            if credential is not None:
                rows.append(credential)
                links.append((credential, description))
    taken = set(
        DeviceCredential.objects.filter(
            fingerprint__in=[row.fingerprint for row in rows]
        ).values_list("fingerprint", flat=True)
    )
    fresh = [(row, d) for row, d in links if row.fingerprint not in taken]
    DeviceCredential.objects.bulk_create([row for row, _ in fresh], batch_size=1000)
    RegisteredCertificate.objects.bulk_create(
        [
            RegisteredCertificate(
                credential=row,
                certificate_id=description["certificateId"],
                certificate_arn=description["certificateArn"],
                aws_status=description["status"],
                issuer=identity.issuer(description["certificatePem"]),
            )
            for row, description in fresh
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    job.certificates_imported += len(fresh)
    active = [row.device for row, _ in fresh if row.status == CredentialStatus.ACTIVE]
    _activate([device for device in active if device is not None], job)


def _credential(device: Device, description: dict[str, Any]) -> DeviceCredential | None:
    status = description["status"]
    if status not in (identity.ACTIVE, identity.REVOKED):
        return None
    certificate = x509.load_pem_x509_certificate(description["certificatePem"].encode())
    der = certificate.public_bytes(serialization.Encoding.DER)
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    revoked = status == identity.REVOKED
    return DeviceCredential(
        device=device,
        credential_value=description["certificatePem"],
        status=CredentialStatus.REVOKED if revoked else CredentialStatus.ACTIVE,
        serial_number=format(certificate.serial_number, "x"),
        fingerprint=hashlib.sha256(der).hexdigest(),
        common_name=str(names[0].value) if names else device.device_id,
        not_before=certificate.not_valid_before_utc,
        expires_at=certificate.not_valid_after_utc,
        revoked=revoked,
        revoked_at=timezone.now() if revoked else None,
        revocation_reason="unspecified" if revoked else "",
    )


def _activate(devices: list[Device], job: FleetImport) -> None:
    """A thing with an active certificate is a device in service: registered → active."""
    waiting = {d.pk: d for d in devices if d.status == DeviceStatus.REGISTERED}.values()
    moved, _ = services.transition_devices(
        waiting, DeviceStatus.PROVISIONING, actor=job.created_by, reason=REASON
    )
    services.transition_devices(moved, DeviceStatus.ACTIVE, actor=job.created_by, reason=REASON)


# -- shadows --------------------------------------------------------------------------------------


def _import_shadows(job: FleetImport, devices: dict[str, Device], extras: dict) -> None:
    rows = [
        _shadow(device, extras[name].shadow)
        for name, device in devices.items()
        if extras[name].shadow is not None
    ]
    Shadow.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["device", "name"],
        update_fields=["desired_state", "reported_state", "metadata", "version", "live"],
    )
    job.shadows_imported += len(rows)


def _shadow(device: Device, document: dict[str, Any]) -> Shadow:
    state = document.get("state") or {}
    stamp = document.get("timestamp")
    return Shadow(
        device=device,
        name="",
        desired_state=state.get("desired") or {},
        reported_state=state.get("reported") or {},
        metadata=document.get("metadata") or {},
        version=int(document.get("version") or 0),
        live=True,
        updated_at=datetime.fromtimestamp(stamp, UTC) if stamp else timezone.now(),
    )


# -- sync state -----------------------------------------------------------------------------------


def _mark_synced(devices: dict[str, Device], listed: dict[str, dict]) -> None:
    """The imported devices' things are as AWS has them: in sync, at AWS's version."""
    pks = [device.pk for device in devices.values()]
    ThingSync.objects.bulk_create(
        [ThingSync(device=device) for device in devices.values()], ignore_conflicts=True
    )
    rows = list(ThingSync.objects.select_for_update().filter(pk__in=pks).select_related("device"))
    now = timezone.now()
    for row in rows:
        thing = listed[row.device.device_id]
        row.state, row.synced_generation, row.synced_at = SyncState.SYNCED, row.generation, now
        row.thing_name, row.thing_arn = thing["thingName"], thing["thingArn"]
        row.thing_version = thing.get("version")
        row.note = REASON
    fields = ["state", "synced_generation", "synced_at", "thing_name", "thing_arn", "note"]
    ThingSync.objects.bulk_update(rows, [*fields, "thing_version"], batch_size=1000)
