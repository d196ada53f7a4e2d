"""What marks a device for a sync with AWS: the registry's hooks (devices.hooks) and the
credential door (devices.gateway_doors), each inside the transaction of the change, so a change
committed is a change AWS will hear of (aws_gateway.sync_state)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import Q

from aws_gateway import sync_state
from aws_gateway.choices import CertificateIssuer
from aws_gateway.wiring import AWS
from devices import hooks
from devices.gateway_doors import CredentialDoor
from devices.models import Device, DeviceCredential


def _on_aws(devices: Iterable[Device]) -> list[object]:
    return [device.pk for device in devices if device.gateway == AWS]


def on_registered(event: hooks.DevicesRegistered) -> None:
    sync_state.mark_pending(_on_aws(event.devices))


def on_updated(event: hooks.DeviceUpdated) -> None:
    # A device moved off AWS still has a thing to retire.
    if event.device.gateway == AWS or event.previous.get("gateway") == AWS:
        sync_state.mark_pending([event.device.pk])


def on_transitioned(event: hooks.DevicesTransitioned) -> None:
    sync_state.mark_pending(_on_aws(event.devices))


def on_membership_changed(event: hooks.GroupMembershipChanged) -> None:
    sync_state.mark_pending(_on_aws([*event.added, *event.removed]))


def on_group_saved(event: hooks.GroupSaved) -> None:
    if not event.created and "name" in event.changed and not event.group.is_dynamic:
        members = Device.objects.filter(group=event.group, gateway=AWS)
        sync_state.mark_pending(members.values_list("pk", flat=True))


def on_credentials(credentials: Sequence[DeviceCredential]) -> None:
    sync_state.mark_pending(credential.device_id for credential in credentials)


CREDENTIAL_DOOR = CredentialDoor(
    issued=on_credentials,
    revoked=on_credentials,
    # Imported certificates AWS signed (its fleet provisioning): revoked on AWS, not in the CRL.
    issued_elsewhere=Q(aws_certificate__issuer=CertificateIssuer.AWS),
)
