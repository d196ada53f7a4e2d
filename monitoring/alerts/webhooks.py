"""One signed POST of a webhook document: the signature, the headers, and the HTTP exchange.

The signature (docs/monitoring-alerts.md): HMAC-SHA256 under FLEETPORTAL_WEBHOOK_SECRET over
`<timestamp>.<body>`, where the timestamp (epoch seconds) is also sent in X-Fleetportal-Timestamp;
a receiver that checks the signature and refuses old timestamps cannot be fed a replayed request.

The request goes to the address monitoring.alerts.targets checked (never resolved again), never
follows a redirect (http.client does not; a 3xx is a failure), gets the timeout for the whole
exchange (a watchdog shuts the socket down, so an answer dripping a byte at a time cannot hold a
worker), reads at most a little of the answer, and uses no proxy from the environment.
"""

import contextlib
import hashlib
import hmac
import http.client
import socket
import ssl
import threading
import time

from monitoring.alerts import targets

SIGNATURE_HEADER = "X-Fleetportal-Signature"
TIMESTAMP_HEADER = "X-Fleetportal-Timestamp"
DELIVERY_HEADER = "X-Fleetportal-Delivery"
MAX_ANSWER_BYTES = 4096


class DeliveryFailed(Exception):
    """The attempt did not end in a 2xx answer; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Fleetportal-Signature value: sha256=<hex HMAC of "<timestamp>.<body>">."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def post(url: str, body: bytes, *, secret: str, delivery_id: int, timeout: float) -> int:
    """POST the signed body; returns the 2xx status, or raises DeliveryFailed / TargetRefused."""
    parts, address = targets.checked_address(url)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fleetportal-webhooks",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: str(delivery_id),
    }
    connection = _connection(parts.scheme, parts.hostname or "", address, parts.port, timeout)
    aborted = threading.Event()
    watchdog = threading.Timer(timeout, _abort, [connection, aborted])
    watchdog.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        # The watchdog's shutdown reads as "remote end closed": say what really happened.
        if aborted.is_set() or isinstance(exc, TimeoutError):
            raise DeliveryFailed(f"no answer within {timeout:g} s") from None
        raise DeliveryFailed(str(exc) or type(exc).__name__) from None
    finally:
        watchdog.cancel()
        connection.close()
    if not 200 <= response.status < 300:
        raise DeliveryFailed(f"answered HTTP {response.status}", response.status)
    return response.status


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the URL's host."""

    def __init__(self, host: str, address: str, port: int | None, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS, the certificate checked against the URL's host name."""

    def __init__(self, host: str, address: str, port: int | None, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _connection(scheme: str, host: str, address: str, port: int | None, timeout: float):
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    return kind(host, address, port, timeout)


def _abort(connection: http.client.HTTPConnection, aborted: threading.Event) -> None:
    """End an exchange past its deadline: shutting the socket down wakes the blocked read."""
    aborted.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
