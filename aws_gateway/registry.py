"""Registry sync, portal → AWS: a device on the AWS gateway is a thing (aws_gateway.things) of
its device type's thing type, in the thing group of its static group, with its certificates
registered, attached to it and to the fleet's policy (aws_gateway.identity); certificates AWS
issued (imported: its fleet provisioning's) are attached to it and keep their own policies.

`sync(pk)` brings one device's thing in line with the portal, from whatever state AWS is in: it
asks AWS what is there and changes only what differs, so running it twice, or again after a
crash half-way, does the same as once. A device that is decommissioned, or moved off the AWS
gateway, has its thing deleted or disabled (FLEETPORTAL_AWS_DECOMMISSION). A thing someone
deleted on AWS behind the portal's back is created again (the portal is the registry of record
for its AWS devices) and the device's timeline says so.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from aws_gateway import client, faults, identity, sync_state, things
from aws_gateway.choices import THING_RECREATED, CertificateIssuer, Decommission, SyncState
from aws_gateway.models import RegisteredCertificate, ThingSync
from aws_gateway.wiring import AWS
from devices import services
from devices.choices import CredentialStatus
from devices.models import Device, DeviceCredential, DeviceGroup
from fleetportal.actors import SYSTEM

logger = logging.getLogger(__name__)


def sync(pk: UUID | str) -> str:
    """Sync one device's thing; returns the state it left (synced, failed, removed, or "" when
    there was nothing to do)."""
    row = ThingSync.objects.filter(device_id=pk).first()
    if row is None or row.synced_generation >= row.generation:
        return ""
    started = row.generation
    device = Device.objects.select_related("group").get(pk=pk)
    try:
        fields, state = _push(device, row)
    except faults.AWS_ERRORS as exc:
        logger.warning("Syncing %s with AWS IoT failed: %s", device.device_id, exc)
        sync_state.record_failed(row, faults.describe(exc))
        return SyncState.FAILED
    sync_state.record_synced(row, started=started, state=state, **fields)
    return state


def _push(device: Device, row: ThingSync) -> tuple[dict[str, Any], str]:
    iot = client.client("iot")
    name = things.thing_name(device)
    if device.gateway != AWS or device.is_decommissioned:
        _sync_certificates(iot, device, name, attach=False)
        return _retire(iot, device, name)
    fields = _ensure_thing(iot, device, row, name)
    _ensure_group(iot, device, name)
    _sync_certificates(iot, device, name, attach=True)
    return fields, SyncState.SYNCED


# -- the thing ------------------------------------------------------------------------------------


def _ensure_thing(iot: Any, device: Device, row: ThingSync, name: str) -> dict[str, Any]:
    type_name = things.thing_type_name(device.device_type)
    try:
        described = iot.describe_thing(thingName=name)
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
        return _create_thing(iot, device, row, name, type_name)
    version = described.get("version")
    if things.differs(device, described):
        ensure_thing_type(iot, type_name)
        iot.update_thing(
            thingName=name,
            thingTypeName=type_name,
            attributePayload={"attributes": things.attributes(device), "merge": True},
            expectedVersion=version,
        )
        version = (version or 0) + 1
    return {"thing_name": name, "thing_arn": described["thingArn"], "thing_version": version}


def _create_thing(
    iot: Any, device: Device, row: ThingSync, name: str, type_name: str
) -> dict[str, Any]:
    ensure_thing_type(iot, type_name)
    created = iot.create_thing(
        thingName=name,
        thingTypeName=type_name,
        attributePayload={"attributes": things.create_attributes(device)},
    )
    fields = {"thing_name": name, "thing_arn": created["thingArn"], "thing_version": 1}
    if row.thing_arn:
        # It existed and someone deleted it on AWS: the registry of record puts it back.
        note = f"The thing was deleted on AWS outside the portal; recreated {timezone.now():%c}."
        services.record_event(device, THING_RECREATED, actor=SYSTEM, data={"thing": name})
        fields["note"] = note
        # Its certificates were detached with it: register and attach the portal's again (an
        # AWS-issued one cannot be registered; it is attached again as it is).
        RegisteredCertificate.objects.filter(
            credential__device=device, issuer=CertificateIssuer.PORTAL
        ).delete()
    return fields


def ensure_thing_type(iot: Any, type_name: str) -> bool:
    """Create the thing type if AWS does not have it; True if it was created."""
    try:
        iot.describe_thing_type(thingTypeName=type_name)
        return False
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
    try:
        iot.create_thing_type(
            thingTypeName=type_name,
            thingTypeProperties={
                "thingTypeDescription": "A device type of fleetportal.",
                "searchableAttributes": things.SEARCHABLE,
            },
        )
    except faults.AWS_ERRORS as exc:
        if faults.is_already_there(exc):
            return False
        raise
    return True


def _retire(iot: Any, device: Device, name: str) -> tuple[dict[str, Any], str]:
    """A decommissioned device, or one moved off AWS: its thing deleted, or kept and marked."""
    try:
        if settings.AWS_DECOMMISSION == Decommission.DELETE:
            for principal in iot.list_thing_principals(thingName=name).get("principals", []):
                iot.detach_thing_principal(thingName=name, principal=principal)
            iot.delete_thing(thingName=name)
            return {"note": "Thing deleted on AWS."}, SyncState.REMOVED
        attributes = {**things.attributes(device), things.STATUS_ATTRIBUTE: "decommissioned"}
        iot.update_thing(thingName=name, attributePayload={"attributes": attributes, "merge": True})
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
        return {"note": "No thing on AWS."}, SyncState.REMOVED
    return {"note": "Thing kept on AWS, marked decommissioned."}, SyncState.REMOVED


# -- its group ------------------------------------------------------------------------------------


def _ensure_group(iot: Any, device: Device, name: str) -> None:
    """The thing is in its static group's thing group and in no other thing group named after a
    portal group (thing groups the portal does not know are left alone)."""
    group = device.group
    wanted = things.aws_name(group.name) if group is not None else None
    current = {
        listed["groupName"]
        for page in iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=name)
        for listed in page["thingGroups"]
    }
    portal_names = {things.aws_name(n) for n in DeviceGroup.objects.values_list("name", flat=True)}
    for other in sorted((current & portal_names) - {wanted}):
        iot.remove_thing_from_thing_group(thingGroupName=other, thingName=name)
    if group is not None and wanted is not None and wanted not in current:
        _add_to_group(iot, name, wanted, group.description)


def _add_to_group(iot: Any, name: str, group_name: str, description: str) -> None:
    """Add the thing to the thing group, creating the group the first time."""
    try:
        iot.add_thing_to_thing_group(thingGroupName=group_name, thingName=name)
        return
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
    try:
        iot.create_thing_group(
            thingGroupName=group_name,
            thingGroupProperties={"thingGroupDescription": description[:2028]},
        )
    except faults.AWS_ERRORS as exc:
        if not faults.is_already_there(exc):  # another worker made it meanwhile
            raise
    iot.add_thing_to_thing_group(thingGroupName=group_name, thingName=name)


# -- its certificates -----------------------------------------------------------------------------


def _sync_certificates(iot: Any, device: Device, name: str, *, attach: bool) -> None:
    """Active certificates registered and attached (when the thing is in service); revoked ones
    that AWS knows marked REVOKED there."""
    rows = (
        DeviceCredential.objects.filter(device=device)
        .exclude(status=CredentialStatus.PENDING_ACTIVATION)
        .select_related("aws_certificate")
    )
    now = timezone.now()
    for credential in rows:
        known: RegisteredCertificate | None = getattr(credential, "aws_certificate", None)
        if credential.status == CredentialStatus.ACTIVE and credential.expires_at > now:
            if attach:
                _register_and_attach(iot, credential, known, name)
        elif known is not None and known.aws_status != identity.REVOKED:
            identity.revoke_certificate(iot, known.certificate_id)
            known.aws_status = identity.REVOKED
            known.save(update_fields=["aws_status", "updated_at"])


def _register_and_attach(
    iot: Any, credential: DeviceCredential, known: RegisteredCertificate | None, name: str
) -> None:
    if known is None:
        registered = identity.register_certificate(iot, credential.credential_value)
        known = RegisteredCertificate.objects.create(
            credential=credential,
            certificate_id=registered.certificate_id,
            certificate_arn=registered.certificate_arn,
            aws_status=identity.ACTIVE,
        )
    identity.attach(
        iot,
        name,
        identity.Registered(known.certificate_id, known.certificate_arn),
        with_policy=known.issuer == CertificateIssuer.PORTAL,
    )
