"""The pre-provisioning hook: one POST to a host the operator approved (device-protocol.md §3.2).

The URL comes from a template, but the portal makes the request from inside its own network, so
it is confined: the host must be listed in FLEETPORTAL_PROVISIONING_HOOK_HOSTS, the scheme is
https unless FLEETPORTAL_PROVISIONING_HOOK_ALLOW_HTTP, redirects are never followed (http.client
does not follow them; a 3xx is a failure), the whole exchange gets HOOK_TIMEOUT_SECONDS and the
answer MAX_ANSWER_BYTES. The connection is direct: no proxy from the environment is used.
"""

import contextlib
import http.client
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings

# device-protocol.md §3.2: a pre-provisioning hook must answer within 5 s.
HOOK_TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 64 * 1024


class HookFailed(Exception):
    """The hook could not be asked, or did not answer with a JSON document in time."""


def allowed_hosts() -> set[str]:
    return {host.strip("[]").lower() for host in settings.PROVISIONING_HOOK_HOSTS}


def url_errors(url: str) -> list[str]:
    """Why the portal may not call url ([] when it may, or when there is no hook)."""
    if not url:
        return []
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - an out-of-range port raises here
    except ValueError:
        return ["The hook URL's port is not a port number."]
    errors = []
    if parts.scheme != "https" and not (
        parts.scheme == "http" and settings.PROVISIONING_HOOK_ALLOW_HTTP
    ):
        errors.append(
            "The hook URL must use https (FLEETPORTAL_PROVISIONING_HOOK_ALLOW_HTTP allows http)."
        )
    if parts.username is not None or parts.password is not None:
        errors.append("The hook URL may not carry a user name or password.")
    host = (parts.hostname or "").lower()
    if host not in allowed_hosts():
        listed = ", ".join(sorted(allowed_hosts())) or "empty, so no hook is allowed"
        errors.append(
            f"The hook host {host!r} is not in FLEETPORTAL_PROVISIONING_HOOK_HOSTS ({listed})."
        )
    return errors


def post(url: str, body: dict) -> Any:
    """POST body as JSON to url and return the JSON answer of a 200, or raise HookFailed."""
    errors = url_errors(url)
    if errors:
        raise HookFailed(" ".join(errors))
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=HOOK_TIMEOUT_SECONDS,
            context=ssl.create_default_context(),
        )
    else:
        connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=HOOK_TIMEOUT_SECONDS
        )
    # Socket timeouts bound each read, not the sum: a hook dripping a byte at a time would
    # otherwise hold a claim (and the bridge's runner) for as long as it likes.
    watchdog = threading.Timer(HOOK_TIMEOUT_SECONDS, _abort, [connection])
    watchdog.start()
    started = time.monotonic()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(
            "POST", path, body=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        if response.status != 200:
            raise HookFailed(f"answered HTTP {response.status} (redirects are not followed)")
        answer = response.read(MAX_ANSWER_BYTES + 1)
        if len(answer) > MAX_ANSWER_BYTES:
            raise HookFailed(f"answered more than {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() - started >= HOOK_TIMEOUT_SECONDS:
            raise HookFailed(f"did not answer within {HOOK_TIMEOUT_SECONDS} s")
        return orjson.loads(answer)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if time.monotonic() - started >= HOOK_TIMEOUT_SECONDS:
            raise HookFailed(f"did not answer within {HOOK_TIMEOUT_SECONDS} s") from None
        raise HookFailed(str(exc) or type(exc).__name__) from None
    finally:
        watchdog.cancel()
        connection.close()


def _abort(connection: http.client.HTTPConnection) -> None:
    """End a request past its deadline: shutting the socket down wakes the blocked read."""
    sock = connection.sock
    if sock is not None:
        # The plain socket's shutdown: SSLSocket.shutdown would drop its SSL object under the
        # reading thread.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
