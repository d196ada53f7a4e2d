"""Device credentials: issuing, rotating, revoking and watching the expiry of certificates.

Every entry point (REST, admin, MQTT handlers, the device API, Celery beat) calls these. Private
keys the portal generates exist only in a return value: never in a row, an event or a log line.
Revocation reaches the broker after commit through devices.revocation.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from devices import gateway_doors, hooks, pki, revocation, services
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.exceptions import DeviceDecommissioned, DeviceError
from devices.models import Device, DeviceCredential, DeviceEvent, in_service
from fleetportal import outbox, topics
from fleetportal.actors import DEVICE, SYSTEM
from fleetportal.bridge import coverage
from fleetportal.errors import DomainError

logger = logging.getLogger(__name__)


class RevocationReason(models.TextChoices):
    """RFC 5280 reasons the CRL carries as reason codes (devices.pki.crl maps the names)."""

    UNSPECIFIED = "unspecified", "Unspecified"
    KEY_COMPROMISE = "keyCompromise", "Key compromise"
    SUPERSEDED = "superseded", "Superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation", "Cessation of operation"
    AFFILIATION_CHANGED = "affiliationChanged", "Affiliation changed"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn", "Privilege withdrawn"


SUPERSEDED = RevocationReason.SUPERSEDED.value
CESSATION_OF_OPERATION = RevocationReason.CESSATION_OF_OPERATION.value
WARNING_BATCH = 500


class CredentialError(DeviceError):
    field = "certificateId"


class UnknownCertificate(CredentialError):
    code = "unknown_certificate"
    http_status = 404

    def __init__(self, device_id: str, certificate_id: str):
        super().__init__(f"Device {device_id} has no certificate {certificate_id!r}.")


class CertificateNotUsable(CredentialError):
    code = "certificate_not_usable"

    def __init__(self, certificate_id: str, why: str):
        super().__init__(f"Certificate {certificate_id} cannot be used: {why}.")


class NothingToRotate(CredentialError):
    code = "no_active_certificate"

    def __init__(self, device_id: str):
        super().__init__(
            f"Device {device_id} has no active certificate to rotate; issue one instead."
        )


# -- the CA ---------------------------------------------------------------------------------------


def load_authority() -> pki.CertificateAuthority:
    """The issuing CA from settings, read once per process (and again if the settings change)."""
    return _load_authority(Path(settings.FLEETPORTAL_CA_DIR), settings.FLEETPORTAL_CA_PASSPHRASE)


@lru_cache(maxsize=4)
def _load_authority(directory: Path, passphrase: str | None) -> pki.CertificateAuthority:
    return pki.load_ca(directory, passphrase)


# -- issuing --------------------------------------------------------------------------------------


def new_credential(
    issued: pki.IssuedCertificate,
    common_name: str,
    *,
    device: Device | None,
    status: str = CredentialStatus.ACTIVE,
) -> DeviceCredential:
    """The (unsaved) row recording a certificate the CA just signed."""
    return DeviceCredential(
        device=device,
        credential_value=issued.pem,
        status=status,
        serial_number=format(issued.serial_number, "x"),
        fingerprint=issued.fingerprint,
        common_name=common_name,
        not_before=issued.not_before,
        expires_at=issued.not_after,
    )


def issue_credential(
    device: Device, *, csr_pem: str | None = None, actor: str
) -> tuple[DeviceCredential, str | None]:
    """Issue a certificate for device (CN = device_id): from its CSR, or with a new key pair.

    Returns (credential, private_key_pem); the key is None with a CSR. A registered device moves
    to provisioning. Nothing is written if the CSR or the device is refused.
    """
    if device.is_decommissioned:
        raise DeviceDecommissioned(device.device_id)
    private_key, issued = _sign(device.device_id, csr_pem)
    key_source = "csr" if csr_pem is not None else "portal"
    (credential,) = _record_issued([(device, issued)], actor=actor, key_source=key_source)
    if isinstance(credential, DomainError):
        raise credential
    return credential, private_key


def issue_credentials(
    pairs: Sequence[tuple[Device, str]], *, actor: str
) -> list[DeviceCredential | DomainError]:
    """Issue certificates from many devices' CSRs (bulk provisioning).

    Returns, for each (device, csr_pem) in order, its credential or the error that refused it (a
    bad CSR, a decommissioned device); one refusal does not stop the others. The CSRs are checked
    and signed first, then a single transaction records the lot in a fixed number of queries.
    """
    signed = [(device, _sign_csr(device, csr_pem)) for device, csr_pem in pairs]
    return _record_issued(signed, actor=actor, key_source="csr")


def _sign_csr(device: Device, csr_pem: str) -> pki.IssuedCertificate | DomainError:
    if device.is_decommissioned:
        return DeviceDecommissioned(device.device_id)
    try:
        return _sign(device.device_id, csr_pem)[1]
    except DomainError as exc:
        return exc


def _record_issued(
    signed: list[tuple[Device, pki.IssuedCertificate | DomainError]], *, actor: str, key_source: str
) -> list[DeviceCredential | DomainError]:
    """Save the signed certificates of devices that are not decommissioned, with their events; a
    registered device moves to provisioning."""
    with transaction.atomic():
        pks = {device.pk for device, issued in signed if not isinstance(issued, DomainError)}
        # Primary-key order, as transition_devices locks: two batches cannot deadlock.
        locked = {
            d.pk: d
            for d in Device.objects.select_for_update(no_key=True).filter(pk__in=pks).order_by("pk")
        }
        results = [_new_issued(locked, device, issued) for device, issued in signed]
        created = [result for result in results if isinstance(result, DeviceCredential)]
        DeviceCredential.objects.bulk_create(created, batch_size=1000)
        gateway_doors.announce_issued(created)
        # Every locked device that is not decommissioned got a certificate above.
        registered = [d for d in locked.values() if d.status == DeviceStatus.REGISTERED]
        services.transition_locked_devices(
            registered, DeviceStatus.PROVISIONING, actor=actor, reason="credential issued"
        )
        DeviceEvent.objects.bulk_create(
            (
                DeviceEvent(
                    device=credential.device,
                    event_type=EventType.CREDENTIAL_ISSUED,
                    actor=actor,
                    event_data=_issued_event(credential, key_source),
                )
                for credential in created
            ),
            batch_size=1000,
        )
        # A device must not publish before a partitioned bridge subscribed its topics: the
        # caller gets its certificate only once they are (bounded; architecture.md §3).
        coverage.wait_until_covered_after_commit(
            (credential.common_name for credential in created), what="newly certified devices"
        )
    return results


def _new_issued(
    locked: dict[object, Device], device: Device, issued: pki.IssuedCertificate | DomainError
) -> DeviceCredential | DomainError:
    if isinstance(issued, DomainError):
        return issued
    current = locked[device.pk]
    if current.is_decommissioned:
        return DeviceDecommissioned(current.device_id)
    return new_credential(issued, current.device_id, device=current)


def _sign(device_id: str, csr_pem: str | None) -> tuple[str | None, pki.IssuedCertificate]:
    ca, days = load_authority(), settings.DEVICE_CERT_DAYS
    if csr_pem is None:
        return pki.generate_key_and_certificate(ca, device_id, days)
    csr = pki.load_csr(csr_pem)
    pki.check_csr(csr, device_id)
    return None, pki.issue_certificate(ca, csr.public_key(), device_id, days=days)


def _issued_event(credential: DeviceCredential, key_source: str) -> dict:
    data = {
        "certificateId": credential.fingerprint,
        "serialNumber": credential.serial_number,
        "expiresAt": credential.expires_at.isoformat(),
        "keySource": key_source,
    }
    replaced = credential.replaces  # None without a query when replaces_id is None
    if replaced is not None:
        data["replaces"] = replaced.fingerprint
    return data


# -- first connection -----------------------------------------------------------------------------

# Device ids known to be past provisioning. Statuses only move forward from there and device ids
# are never reused, so an entry never goes stale; the bound only caps memory.
_settled: set[str] = set()
_SETTLED_MAX = 500_000


def mark_connected(device_id: str) -> bool:
    """Activate a device in provisioning on its first authenticated message; True if it moved."""
    if device_id in _settled:
        return False
    status = Device.objects.filter(device_id=device_id).values_list("status", flat=True).first()
    if status is None or status == DeviceStatus.REGISTERED:
        return False  # unknown (claim pending) or not yet credentialed: ask again next time
    if status != DeviceStatus.PROVISIONING:
        _remember_settled(device_id)
        return False
    with transaction.atomic():
        device = Device.objects.select_for_update(no_key=True).get(device_id=device_id)
        if device.status != DeviceStatus.PROVISIONING:
            return False  # another bridge got there first
        services.transition_device(
            device, DeviceStatus.ACTIVE, actor=DEVICE, reason="first authenticated connection"
        )
        services.record_event(device, EventType.CONNECTED, actor=DEVICE)
    _remember_settled(device_id)
    return True


def _remember_settled(device_id: str) -> None:
    if len(_settled) >= _SETTLED_MAX:
        _settled.clear()
    _settled.add(device_id)


def forget_settled() -> None:
    """Empty the first-connection cache (tests reuse device ids across rolled-back databases)."""
    _settled.clear()


# -- revoking -------------------------------------------------------------------------------------


def revoke_credential(credential: DeviceCredential, *, actor: str, reason: str) -> DeviceCredential:
    """Revoke one certificate: the broker refuses it and drops its device's session after commit.

    Revoking a revoked certificate changes nothing.
    """
    revoked = revoke_credentials(
        DeviceCredential.objects.filter(pk=credential.pk), actor=actor, reason=reason
    )
    return revoked[0] if revoked else DeviceCredential.objects.get(pk=credential.pk)


def revoke_when_decommissioned(event: hooks.DevicesTransitioned) -> None:
    """Registry hook: a decommissioned device loses its certificates in the same transaction
    (issue 3 §7), so no certificate outlives its device."""
    if event.to_status == DeviceStatus.DECOMMISSIONED:
        revoke_devices_credentials(event.devices, actor=event.actor, reason=CESSATION_OF_OPERATION)


def revoke_devices_credentials(
    devices: Iterable[Device], *, actor: str, reason: str
) -> list[DeviceCredential]:
    pks = [device.pk for device in devices]
    return revoke_credentials(
        DeviceCredential.objects.filter(device__in=pks), actor=actor, reason=reason
    )


def revoke_credentials(
    credentials: QuerySet[DeviceCredential], *, actor: str, reason: str, evict: bool = True
) -> list[DeviceCredential]:
    """Revoke the live certificates among `credentials`; returns those it revoked.

    The rows, their events and the CRL publication commit together: on commit the CRL is
    rebuilt, validated and loaded by the broker, then each device's session is taken over
    (evict=False for a superseded certificate, whose device is already on its new one).
    """
    reason = reason.strip() or "unspecified"
    with transaction.atomic():
        rows = list(
            credentials.exclude(status=CredentialStatus.REVOKED)
            .select_for_update(of=("self",))
            .select_related("device")
            .order_by("pk")
        )
        if not rows:
            return []
        revocation.mark_revoked(rows, reason=reason)
        gateway_doors.announce_revoked(rows)
        DeviceEvent.objects.bulk_create(
            DeviceEvent(
                device=row.device,
                event_type=EventType.CREDENTIAL_REVOKED,
                actor=actor,
                event_data={"certificateId": row.fingerprint, "reason": reason},
            )
            for row in rows
            if row.device_id
        )
        device_ids = {row.device.device_id for row in rows if row.device} if evict else set()
        revocation.publish_after_commit(evict=device_ids)
    return rows


# -- rotation -------------------------------------------------------------------------------------


def request_rotation(
    device: Device,
    csr_pem: str,
    *,
    actor: str = DEVICE,
    current: DeviceCredential | None = None,
    client_token: str | None = None,
) -> DeviceCredential:
    """Issue a certificate that replaces the device's current one once it is first used.

    `current` is the certificate the request came with when known (HTTP device API); otherwise
    the device's newest active certificate is replaced. An earlier rotation that was never used
    is revoked: only the latest one can complete. A request repeating an earlier one's
    clientToken and key (an MQTT redelivery) gets the same, still unused, certificate back.
    """
    if device.is_decommissioned:
        raise DeviceDecommissioned(device.device_id)
    _, issued = _sign(device.device_id, csr_pem)
    with transaction.atomic():
        locked = Device.objects.select_for_update(no_key=True).get(pk=device.pk)
        if locked.is_decommissioned:
            raise DeviceDecommissioned(locked.device_id)
        replayed = client_token and _replayed_rotation(locked, client_token, issued)
        if replayed:
            return replayed
        old = _rotation_source(locked, current)
        abandoned = DeviceCredential.objects.filter(replaces=old, first_used_at__isnull=True)
        revoke_credentials(abandoned, actor=actor, reason=SUPERSEDED, evict=False)
        # The link is one-to-one: the revoked, never-used predecessor lets go of it.
        DeviceCredential.objects.filter(replaces=old).update(replaces=None)
        credential = new_credential(issued, locked.device_id, device=locked)
        credential.replaces = old
        credential.save(force_insert=True)
        gateway_doors.announce_issued([credential])
        data = _issued_event(credential, "csr")
        if client_token:
            data["clientToken"] = client_token
        services.record_event(locked, EventType.CREDENTIAL_ISSUED, actor=actor, data=data)
    return credential


def _replayed_rotation(
    device: Device, client_token: str, issued: pki.IssuedCertificate
) -> DeviceCredential | None:
    event = (
        device.events.filter(
            event_type=EventType.CREDENTIAL_ISSUED,
            event_data__contains={"clientToken": client_token},
        )
        .order_by("-created_at")
        .first()
    )
    if event is None:
        return None
    earlier = device.credentials.filter(
        fingerprint=event.event_data.get("certificateId"),
        status=CredentialStatus.ACTIVE,
        first_used_at__isnull=True,
    ).first()
    if earlier is None or _public_key(earlier.credential_value) != _public_key(issued.pem):
        return None
    return earlier


def _public_key(certificate_pem: str) -> bytes:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _rotation_source(device: Device, current: DeviceCredential | None) -> DeviceCredential:
    live = device.credentials.select_for_update().filter(
        status=CredentialStatus.ACTIVE, expires_at__gt=timezone.now()
    )
    if current is not None:
        found = live.filter(pk=current.pk).first()
    else:
        # A certificate issued by a rotation and not yet used is not what the device runs on.
        found = (
            live.exclude(replaces__isnull=False, first_used_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
    if found is None:
        raise NothingToRotate(device.device_id)
    return found


def confirm_rotation(device: Device, certificate_id: str) -> DeviceCredential:
    """The device uses certificate_id: record its first use and revoke what it replaces.

    Idempotent: a second confirmation changes nothing.
    """
    with transaction.atomic():
        credential = (
            DeviceCredential.objects.select_for_update(of=("self",))
            .filter(device=device, fingerprint=certificate_id.lower())
            .select_related("replaces")
            .first()
        )
        if credential is None:
            raise UnknownCertificate(device.device_id, certificate_id)
        if credential.status != CredentialStatus.ACTIVE:
            raise CertificateNotUsable(certificate_id, f"it is {credential.status}")
        if credential.first_used_at is None:
            credential.first_used_at = timezone.now()
            credential.save(update_fields=["first_used_at"])
        old = credential.replaces
        if old is not None and old.status != CredentialStatus.REVOKED:
            revoke_credentials(
                DeviceCredential.objects.filter(pk=old.pk),
                actor=DEVICE,
                reason=SUPERSEDED,
                evict=False,
            )
            services.record_event(
                device,
                EventType.CREDENTIAL_ROTATED,
                actor=DEVICE,
                data={"certificateId": credential.fingerprint, "replaced": old.fingerprint},
            )
    return credential


def record_first_use(credential: DeviceCredential) -> None:
    """The device proved it holds this certificate's key (device API): complete a rotation."""
    if credential.first_used_at is not None:
        return
    if credential.replaces_id and credential.device is not None:
        confirm_rotation(credential.device, credential.fingerprint)
    else:
        DeviceCredential.objects.filter(pk=credential.pk, first_used_at__isnull=True).update(
            first_used_at=timezone.now()
        )


def record_connection(device_id: str, at: datetime) -> None:
    """The device connected over mutual TLS (the broker's log): its certificate is in use.

    The log names the device, not the certificate, so this marks the live certificates it
    holds that no rotation is waiting on (a rotation's new certificate counts as used only
    when the device confirms it). One indexed UPDATE per connection, not per message.
    """
    DeviceCredential.objects.filter(
        device__device_id=device_id,
        status=CredentialStatus.ACTIVE,
        replaces__isnull=True,
        first_used_at__isnull=True,
    ).update(first_used_at=at)


# -- expiry ---------------------------------------------------------------------------------------


def expiring(days: int, *, at: datetime | None = None) -> QuerySet[DeviceCredential]:
    """Live certificates that expire within `days` (and have not expired yet)."""
    at = at or timezone.now()
    return DeviceCredential.objects.filter(
        revoked=False,
        status=CredentialStatus.ACTIVE,
        expires_at__gt=at,
        expires_at__lte=at + timedelta(days=days),
    )


def warn_expiring(days: int | None = None) -> int:
    """Record CREDENTIAL_EXPIRING once per certificate and tell its device; returns how many.

    A certificate a rotation already replaces is left alone. Rows are claimed with SKIP LOCKED and
    the event marks them done, so concurrent or repeated runs warn each certificate once.
    """
    days = settings.CERT_EXPIRY_WARNING_DAYS if days is None else days
    warned = 0
    while True:
        with transaction.atomic():
            batch = list(_unwarned(days)[:WARNING_BATCH])
            for credential in batch:
                _warn(credential)
        warned += len(batch)
        if len(batch) < WARNING_BATCH:
            return warned


def _unwarned(days: int) -> QuerySet[DeviceCredential]:
    already = DeviceEvent.objects.alias(certificate_id=KT("event_data__certificateId")).filter(
        device=OuterRef("device"),
        event_type=EventType.CREDENTIAL_EXPIRING,
        certificate_id=OuterRef("fingerprint"),
    )
    return (
        expiring(days)
        .filter(device__isnull=False, replaced_by__isnull=True)
        .filter(in_service("device__"))
        .exclude(Exists(already))
        .select_related("device")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("expires_at")
    )


def _warn(credential: DeviceCredential) -> None:
    device = credential.device
    if device is None:  # claim certificates are not warned about (the query leaves them out)
        return
    device_id = device.device_id
    expires_at = int(credential.expires_at.timestamp())
    services.record_event(
        device,
        EventType.CREDENTIAL_EXPIRING,
        actor=SYSTEM,
        data={
            "certificateId": credential.fingerprint,
            "expiresAt": credential.expires_at.isoformat(),
        },
    )
    outbox.send(
        topics.certificates_expiring(device_id),
        {"certificateId": credential.fingerprint, "expiresAt": expires_at},
        device_id=device_id,
    )
