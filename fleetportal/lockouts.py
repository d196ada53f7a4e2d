"""The doors' failure limits: is this username, address or device locked out, and count a refusal.

Used by the admin login (fleetportal.admin_login), API token authentication
(fleetportal.api.throttles) and the device API's JWT authentication (devices.device_auth). Each
lockout is written once, as a SecurityEvent, when the failure that reaches the limit is counted.
"""

from datetime import timedelta

from django.utils import timezone

from fleetportal import rate_limits
from fleetportal.models import SecurityEvent

Door = tuple[str, str]  # (limit name, key: a username, an address or a device id)


def client_address(request) -> str:
    """REMOTE_ADDR only: a forwarded-for header is whatever the client chose to send. Behind a
    reverse proxy, let the server set REMOTE_ADDR from it (daphne --proxy-headers)."""
    return request.META.get("REMOTE_ADDR") or ""


def locked_for(*doors: Door) -> int:
    """Seconds until every one of these keys may try again (0: none is locked out)."""
    return max(
        (rate_limits.retry_after(rate_limits.limit(name), key) for name, key in doors if key),
        default=0,
    )


def count_failure(address: str, *doors: Door) -> list[rate_limits.Lockout]:
    """Count one refusal against each key; record and return the lockouts it started."""
    started = []
    for name, key in doors:
        if key and (lockout := rate_limits.record_failure(rate_limits.limit(name), key)):
            started.append(lockout)
            SecurityEvent.objects.create(
                limit=lockout.limit,
                subject=_printable(lockout.key),
                address=address or None,
                locked_until=timezone.now() + timedelta(seconds=lockout.seconds),
            )
    return started


def forget_failures(name: str, key: str) -> None:
    rate_limits.forget_failures(rate_limits.limit(name), key)


def _printable(key: str) -> str:
    # A username or device id as typed (NUL included) must still be storable and readable.
    return key.encode("unicode_escape").decode("ascii")[:255]
