"""Who may read /metrics and how often /metrics and /healthz answer one address."""

import hmac
from ipaddress import ip_address

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from fleetportal import lockouts, rate_limits

LIMIT = "monitoring-address"
# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its
# REMOTE_ADDR says (the proxy runs on this machine).
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def too_many(request: HttpRequest) -> JsonResponse | None:
    """429 with Retry-After when this address is over its requests per minute, else None."""
    wait = rate_limits.over_rate(rate_limits.limit(LIMIT), lockouts.client_address(request))
    if not wait:
        return None
    answer = JsonResponse({"detail": "Too many requests from this address."}, status=429)
    answer["Retry-After"] = str(wait)
    return answer


def may_read_metrics(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set: `Authorization: Bearer <token>` (compared in constant time).
    Without it: a request from this machine that no proxy forwarded."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    if any(request.META.get(header) for header in FORWARDED):
        return False
    try:
        return ip_address(lockouts.client_address(request)).is_loopback
    except ValueError:
        return False
