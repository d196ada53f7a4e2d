"""Celery tasks of the devices app (beat schedule in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from devices import credentials, provisioning, revocation


@shared_task
def warn_expiring_certificates() -> int:
    """Tell devices whose certificate expires within CERT_EXPIRY_WARNING_DAYS (once each)."""
    return credentials.warn_expiring()


@shared_task
def resign_crl() -> None:
    """Re-sign the CRL well before its nextUpdate: an expired CRL locks every device out (§7.4).

    It is rebuilt from the database, so a publication that failed after a revocation is healed
    here too.
    """
    revocation.publish_crl()


@shared_task
def evict_sessions(device_ids: list[str]) -> None:
    """Drop the live sessions of many just-revoked devices (a bulk decommissioning)."""
    revocation.evict_sessions(device_ids)


@shared_task
def expire_pending_claims() -> int:
    """Revoke claim certificates whose ownership token expired unused (AWS: after 1 hour)."""
    return provisioning.expire_pending()
