"""The broker's view of revocation: the CRL built from the registry, and live-session eviction.

Mosquitto checks the CRL only when a device connects, and reads it only at start and on SIGHUP
(device-protocol.md §7.4). So a revocation is three steps: the rows are marked revoked in the
operator's transaction; after commit the CRL is rebuilt from the database, validated, written
atomically and the broker reloaded (fleetportal.broker); then the device's live session is taken
over (fleetportal.bridge.transport.evict) so it must reconnect, and is refused.

The CRL lists revoked certificates (with their reason) and claim certificates pending activation
(certificateHold): the portal's PENDING_ACTIVATION (§3.1). Certificates another CA signed (a
gateway's door names them: AWS's fleet provisioning) are not the portal CA's to list.
"""

import logging
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from devices import gateway_doors, pki
from devices.choices import CredentialStatus
from devices.models import DeviceCredential
from fleetportal import broker
from fleetportal.bridge import transport

logger = logging.getLogger(__name__)

HOLD = "certificateHold"
# Each eviction is one TLS connection to the broker (~10 ms): a few run in the operator's
# request, a bulk decommissioning hands them to a Celery worker (devices.tasks.evict_sessions).
EVICT_INLINE_MAX = 20
# pg_advisory_xact_lock key serialising CRL publication ("CRL" in ASCII).
_CRL_LOCK = 0x43524C


def mark_revoked(credentials: list[DeviceCredential], *, reason: str) -> None:
    """Mark the (locked) rows revoked, in the caller's transaction."""
    at = timezone.now()
    for credential in credentials:
        credential.status = CredentialStatus.REVOKED
        credential.revoked = True
        credential.revoked_at = at
        credential.revocation_reason = reason[:200]
    DeviceCredential.objects.bulk_update(
        credentials, ["status", "revoked", "revoked_at", "revocation_reason"]
    )


def build_current_crl() -> bytes:
    """A validated PEM CRL of every revoked or held certificate that has not expired.

    An expired certificate is refused by its date alone (RFC 5280 §3.3 lets the CRL drop it),
    which keeps the CRL — and each broker reload — small.
    """
    from devices.credentials import load_authority  # credentials imports this module

    ca = load_authority()
    rows = DeviceCredential.objects.exclude(status=CredentialStatus.ACTIVE).filter(
        expires_at__gt=timezone.now()
    )
    elsewhere = gateway_doors.issued_elsewhere()
    if elsewhere is not None:
        # Another CA's serial numbers are not the portal CA's to revoke (a gateway's door).
        rows = rows.exclude(elsewhere)
    listed = rows.values_list(
        "serial_number", "status", "revoked_at", "created_at", "revocation_reason"
    )
    entries = [
        (
            int(serial, 16),
            revoked_at or created_at,
            HOLD if status == CredentialStatus.PENDING_ACTIVATION else reason,
        )
        for serial, status, revoked_at, created_at, reason in listed.iterator(chunk_size=5000)
    ]
    pem = pki.build_crl(ca, entries, next_update_hours=settings.CRL_NEXT_UPDATE_HOURS)
    pki.validate_crl(pem, ca)  # Mosquitto fails open on a bad CRL: never hand it one
    return pem


def publish_crl(*, wait: bool = True) -> bytes:
    """Rebuild the CRL from the database and make the broker load it; returns the PEM.

    Publications are serialised by a transaction-scoped advisory lock, so one built from older
    data can never overwrite a newer one. Called inside a transaction (claim provisioning puts a
    pending certificate on hold before its row commits), the lock is held until that commit, and
    a concurrent publisher waits for it and then sees the new row.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CRL_LOCK])
        pem = build_current_crl()
        broker.publish_crl(pem, wait=wait)
    return pem


def publish_after_commit(*, evict: Iterable[str] = ()) -> None:
    """Once the current transaction commits: publish the CRL, then drop these devices' sessions."""
    transaction.on_commit(partial(_publish_and_evict, sorted(set(evict))))


def _publish_and_evict(device_ids: list[str]) -> None:
    # The revocation is committed whatever happens here; failures are logged loudly, and the
    # re-sign task (devices.tasks.resign_crl) republishes from the database on its next run.
    try:
        publish_crl()
    except Exception:
        logger.exception("Publishing the CRL failed; revoked certificates may still connect.")
    if not device_ids:
        return
    if not broker.is_running():
        # Nobody is connected to a broker that is not running; it loads the CRL when it starts.
        logger.warning("The broker is not running: %d session(s) not evicted.", len(device_ids))
    elif len(device_ids) > EVICT_INLINE_MAX:
        from devices import tasks  # tasks imports this module

        tasks.evict_sessions.delay(device_ids)
    else:
        evict_sessions(device_ids)


def evict_sessions(device_ids: Iterable[str]) -> None:
    """Take over each device's session at the broker, which closes its live connection."""
    for device_id in device_ids:
        try:
            transport.evict(device_id)
        except Exception:
            logger.exception("Evicting device %s from the broker failed.", device_id)
