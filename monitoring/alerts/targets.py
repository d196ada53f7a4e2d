"""Where a webhook may point: http(s) URLs of public hosts only, unless the operator allows more.

The portal makes the request from inside its own network, so a rule's URL could otherwise reach
the database, Redis, a cloud metadata service (169.254.169.254) or the admin of a router (SSRF).
A URL naming a private, loopback, link-local or reserved address — or a name that resolves to one
— is refused unless FLEETPORTAL_ALERT_WEBHOOK_ALLOW_PRIVATE is true. Names are resolved at
delivery and the connection goes to the address that was checked, so a name that resolves to a
public address when checked and to a private one a moment later (DNS rebinding) gets nowhere.
"""

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class TargetRefused(Exception):
    """The URL may not be requested (scheme, credentials, or a private address)."""


def url_problems(url: str) -> list[str]:
    """Why a rule may not name `url` (what is known without asking DNS); [] when it may."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - an out-of-range port raises here
    except ValueError:
        return ["Not a URL with a valid port."]
    problems = []
    if parts.scheme not in ("http", "https"):
        problems.append("Only http:// and https:// URLs.")
    if parts.username is not None or parts.password is not None:
        problems.append("The URL may not carry a user name or password.")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        problems.append("The URL needs a host.")
    elif not private_allowed() and (host in LOCAL_NAMES or _literal_is_private(host)):
        problems.append(
            f"{host} is a private or loopback address "
            "(FLEETPORTAL_ALERT_WEBHOOK_ALLOW_PRIVATE allows such targets)."
        )
    return problems


def checked_address(url: str) -> tuple[SplitResult, str]:
    """The URL's parts and the one address to connect to, or TargetRefused saying why."""
    problems = url_problems(url)
    if problems:
        raise TargetRefused(" ".join(problems))
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"{parts.hostname} does not resolve: {exc}") from None
    addresses = [info[4][0] for info in found]
    if not private_allowed():
        private = [a for a in addresses if not _is_public(a)]
        if private:
            raise TargetRefused(
                f"{parts.hostname} resolves to a private address ({private[0]}); "
                "FLEETPORTAL_ALERT_WEBHOOK_ALLOW_PRIVATE allows such targets."
            )
    return parts, addresses[0]


def private_allowed() -> bool:
    return bool(settings.ALERT_WEBHOOK_ALLOW_PRIVATE)


def _literal_is_private(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: checked when it is resolved, at delivery
    return not _is_public(host)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
