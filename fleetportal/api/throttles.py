"""Limits on the REST API: refused API tokens lock an address out; each user has a request rate.

Both answer 429 with Retry-After (DRF's Throttled). The counters live in Redis
(fleetportal.rate_limits), shared by every portal process.
"""

from rest_framework import exceptions, throttling
from rest_framework.authentication import TokenAuthentication, get_authorization_header

from fleetportal import lockouts, rate_limits

TOKEN_DOOR = "api-token-address"  # noqa: S105 (a limit name)


class LimitedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`; an address that sent too many refused keys is locked out,
    for a while, whatever key it sends next."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        address = lockouts.client_address(request)
        if wait := lockouts.locked_for((TOKEN_DOOR, address)):
            raise exceptions.Throttled(
                wait, detail="Too many refused API tokens from this address."
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            lockouts.count_failure(address, (TOKEN_DOOR, address))
            raise


class UserRateThrottle(throttling.BaseThrottle):
    """Each signed-in user's requests per minute (settings.RATE_LIMITS["api-user"])."""

    scope = "api-user"
    _wait = 0

    def allow_request(self, request, view):
        user = request.user
        if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
            return True
        self._wait = rate_limits.over_rate(rate_limits.limit(self.scope), str(user.pk))
        return not self._wait

    def wait(self):
        return self._wait
