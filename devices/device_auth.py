"""How devices authenticate on the HTTP device API: a short JWT signed with their own key.

The device signs `{"iss": <device_id>, "iat": now, "exp": now + ≤ DEVICE_JWT_MAX_SECONDS}` with
ES256 and the private key of one of its certificates, optionally naming that certificate in the
header's `kid` (its certificateId). The portal verifies the signature against the public keys of
the device's active, unrevoked, unexpired certificates — never against anything the token itself
carries, so `alg: none`, HS256 keyed with a public key and foreign keys all fail. Whatever the
device's record says, a token whose signature does not verify gets the same answer.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, throttling

from devices import credentials, last_seen
from devices.choices import CredentialStatus, EventType
from devices.models import Device, DeviceCredential, DeviceEvent, in_service
from devices.validators import DEVICE_ID_PATTERN
from fleetportal import lockouts, rate_limits
from fleetportal.actors import SYSTEM

ALGORITHM = "ES256"
# Tolerated clock difference between device and portal, on exp, iat and the lifetime bound.
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class DevicePrincipal:
    """request.user on the device API: the device and the certificate whose key signed the JWT."""

    device: Device
    credential: DeviceCredential
    is_authenticated = True
    is_anonymous = False

    @property
    def device_id(self) -> str:
        return self.device.device_id


class DeviceJWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT>`; a refused token is a 401 that says why."""

    keyword = b"bearer"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send exactly one token: 'Authorization: Bearer <JWT>'."
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not a JWT.") from None
        principal = _verify_at_the_door(token, lockouts.client_address(request))
        credentials.record_first_use(principal.credential)
        # REMOTE_ADDR only: a forwarded-for header is whatever the client chose to send.
        last_seen.seen(principal.device_id, timezone.now(), request.META.get("REMOTE_ADDR"))
        return principal, principal.credential

    def authenticate_header(self, request):
        return 'Bearer realm="device"'


class DeviceRateThrottle(throttling.BaseThrottle):
    """Each device's requests per minute (settings.RATE_LIMITS["device-api-device"])."""

    _wait = 0

    def allow_request(self, request, view):
        if isinstance(request.user, DevicePrincipal):
            rule = rate_limits.limit("device-api-device")
            self._wait = rate_limits.over_rate(rule, request.user.device_id)
        return not self._wait

    def wait(self):
        return self._wait


# Refused tokens are counted per claimed device id (the unverified iss) and per address; either
# locked out is answered 429 before any key is tried. Every request also counts towards its
# address's rate.
DEVICE_DOOR, ADDRESS_DOOR = "device-auth-device", "device-auth-address"


def _verify_at_the_door(token: str, address: str) -> "DevicePrincipal":
    doors = ((ADDRESS_DOOR, address), (DEVICE_DOOR, _claimed_device_id(token)))
    if wait := lockouts.locked_for(*doors):
        raise exceptions.Throttled(
            wait, detail="Too many refused tokens for this device or from this address."
        )
    if wait := rate_limits.over_rate(rate_limits.limit("device-api-address"), address):
        raise exceptions.Throttled(wait, detail="Too many requests from this address.")
    try:
        return verify_device_jwt(token)
    except exceptions.AuthenticationFailed:
        for lockout in lockouts.count_failure(address, *doors):
            if lockout.limit == DEVICE_DOOR:
                _record_device_lockout(lockout, address)
        raise


def _claimed_device_id(token: str) -> str:
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except (jwt.InvalidTokenError, AttributeError):
        return ""
    return issuer if isinstance(issuer, str) else ""


def _record_device_lockout(lockout: rate_limits.Lockout, address: str) -> None:
    """In the device's timeline too, when such a device exists (the answer is the same)."""
    if not re.fullmatch(DEVICE_ID_PATTERN, lockout.key):
        return  # names no device (a NUL, say)
    device = Device.objects.filter(device_id=lockout.key).only("pk").first()
    if device is not None:
        DeviceEvent.objects.create(
            device=device,
            event_type=EventType.LOCKED_OUT,
            event_data={"seconds": lockout.seconds, "address": address},
            actor=SYSTEM,
        )


# Every refusal that depends on the device's record (unknown, decommissioned, no such or no
# active certificate) gives this one message, and only after a signature check (against a decoy
# key when there is nothing to check against), so a caller without a device's key cannot tell
# from the answer or its timing which device ids exist.
TIME_CLAIMS = ("exp", "iat", "nbf")
CERTIFICATE_ID = r"[0-9a-f]{64}"  # a SHA-256 fingerprint (device-protocol.md §3.1)
NOT_VERIFIED = "The token's signature does not verify with an active certificate of its device."


def verify_device_jwt(token: str) -> DevicePrincipal:
    """The device and certificate that signed token, or AuthenticationFailed naming the reason."""
    header, claims = _unverified(token)
    candidates = _candidates(_issuer(claims), header.get("kid"))
    keys = [(each, _public_key(each.credential_value)) for each in candidates]
    for credential, key in keys or [(None, _DECOY_KEY)]:
        try:
            verified = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                issuer=claims["iss"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "exp", "iat"], "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise _refused("The token has expired (exp is in the past).") from None
        except jwt.ImmatureSignatureError:
            raise _refused("The token was issued in the future (check the device clock).") from None
        except jwt.InvalidTokenError as exc:
            raise _refused(f"The token is invalid: {exc}.") from None
        if credential is None:  # Nobody holds the decoy's private key; never trust it.
            break
        _check_lifetime(verified)
        return DevicePrincipal(credential.device, credential)
    raise _refused(NOT_VERIFIED)


def _unverified(token: str) -> tuple[dict, dict]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise _refused("The token is not a well-formed JWT.") from None
    if header.get("alg") != ALGORITHM:
        raise _refused(f"Only {ALGORITHM} tokens are accepted, not {header.get('alg')!r}.")
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and not _is_time(value):
            raise _refused(f"The token's {name!r} is not a time in epoch seconds.")
    return header, claims


def _is_time(value: object) -> bool:
    # 10**400 would overflow every comparison with the clock.
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 2**53


def _issuer(claims: dict) -> str:
    device_id = claims.get("iss")
    if not isinstance(device_id, str) or not device_id:
        raise _refused("The token has no 'iss' claim naming the device.")
    return device_id


def _candidates(device_id: str, kid: object) -> list[DeviceCredential]:
    """The live certificates of a live device named device_id, in one query whatever exists."""
    if kid is not None and not isinstance(kid, str):
        raise _refused("The token's 'kid' must be a certificateId.")
    if not re.fullmatch(DEVICE_ID_PATTERN, device_id) or (
        kid is not None and not re.fullmatch(CERTIFICATE_ID, kid, re.IGNORECASE)
    ):
        return []  # names no device or certificate (a NUL, say): refused like an unknown one
    now = timezone.now()
    live = (
        DeviceCredential.objects.filter(
            device__device_id=device_id,
            status=CredentialStatus.ACTIVE,
            revoked=False,
            expires_at__gt=now,
            not_before__lte=now + timezone.timedelta(seconds=LEEWAY_SECONDS),
        )
        .filter(in_service("device__"))
        .select_related("device")
        .order_by("-created_at")
    )
    if kid is not None:
        live = live.filter(fingerprint=kid.lower())
    return list(live[:10])


def _check_lifetime(claims: dict) -> None:
    remaining = claims["exp"] - timezone.now().timestamp()
    limit = settings.DEVICE_JWT_MAX_SECONDS
    if remaining > limit + LEEWAY_SECONDS:
        raise _refused(f"The token's exp is more than {limit} seconds ahead; use shorter tokens.")


# A key nobody holds, generated per process: refusals without a real candidate cost one
# signature check like the others.
_DECOY_KEY = ec.generate_private_key(ec.SECP256R1()).public_key()


@lru_cache(maxsize=4096)
def _public_key(certificate_pem: str):
    return x509.load_pem_x509_certificate(certificate_pem.encode("ascii")).public_key()


def _refused(message: str) -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(message)
