"""Devices connecting and disconnecting, read from the broker's own log, for any app.

Mosquitto tells a subscriber nothing about other clients' connections, but it publishes its own
log on `$SYS/broker/log/<level>` (`log_dest topic` in the generated configuration; only the
backend listener can read it). The lines that matter (Mosquitto 2.0; notice level, but the
takeover, which is logged as an error on $SYS/broker/log/E):

    New connection from 10.1.2.3:50724 on port 8883.
    New client connected from 10.1.2.3:50724 as dev-1 (p2, c1, k60, u'dev-1').
    Client dev-1 disconnected.                          (it sent DISCONNECT)
    Client dev-1 closed its connection.                 (TCP closed without DISCONNECT)
    Socket error on client dev-1, disconnecting.
    Client dev-1 has exceeded timeout, disconnecting.   (keepalive)
    Client dev-1 already connected, closing old connection.   (a new session took over)

The first line says which listener an address came in on; the second, which client it became.
A connection is a device's only on the device listener with the certificate's CN as client id,
so the bridge's own connections (eviction takes a device's client id on the backend listener)
are not reported as the device's. A disconnect line carries only the client id: it is reported
unless the client id's current connection is known not to be a device's, so a disconnect is
still reported after the bridge restarted while the device was connected.

Apps subscribe with `on_connected(hook)` / `on_disconnected(hook)`; hooks run in the bridge's
transaction, in log order, with `at` = when the bridge received the line (the log's own time
stamp has whole seconds and no zone). The lines are QoS 0: while no bridge runs they are lost.
Partition 0 of several bridges holds the filter (it names no device).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from django.conf import settings

from fleetportal import topics
from fleetportal.bridge import router

BROKER_LOG = "broker_log"  # the route kind of $SYS/broker/log/N (fleetportal.topics.parse)


class DisconnectReason(StrEnum):
    DISCONNECTED = "disconnected"  # the device sent DISCONNECT
    CONNECTION_CLOSED = "connection_closed"  # its TCP connection closed without one
    SOCKET_ERROR = "socket_error"
    KEEPALIVE_TIMEOUT = "keepalive_timeout"
    TAKEN_OVER = "taken_over"  # a new connection with its client id (a reconnect, an eviction)
    ADMINISTRATIVE = "administrative"  # a broker plugin ended it (e.g. the flood limit)
    NOT_AUTHORISED = "not_authorised"
    PROTOCOL_ERROR = "protocol_error"  # malformed, oversize or unsupported packets
    ERROR = "error"  # any other line Mosquitto logs as it drops a client


@dataclass(frozen=True)
class DeviceConnected:
    client_id: str  # the device id (= certificate CN)
    address: str  # the device's IP address, without its port
    port: int  # the device's own TCP port (its side of the connection)
    at: datetime
    # The line's own time stamp (see _logged_at); not part of the event's identity.
    logged_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DeviceDisconnected:
    client_id: str
    reason: DisconnectReason
    at: datetime
    logged_at: datetime | None = field(default=None, compare=False)


ConnectedHook = Callable[[DeviceConnected], None]
DisconnectedHook = Callable[[DeviceDisconnected], None]

_NEW_CONNECTION = re.compile(r"New connection from (?P<peer>\S+) on port (?P<port>\d+)\.$")
_CONNECTED = re.compile(
    r"New client connected from (?P<peer>\S+) as (?P<client>\S+) \((?P<flags>[^)]*)\)\.$"
)
# log_timestamp_format %Y-%m-%dT%H:%M:%S (fleetportal/broker.py), or Mosquitto's default epoch.
_STAMP = re.compile(r"^(?:(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)|(?P<epoch>\d{9,11})): ")
_USERNAME = re.compile(r"\bu'(?P<username>[^']*)'")
_CLIENT = r"(?P<client>[^\s<>]+)"  # "<unknown>" (before CONNECT) is no client
_DISCONNECTS = [
    (re.compile(rf"Client {_CLIENT} disconnected\.$"), DisconnectReason.DISCONNECTED),
    (re.compile(rf"Client {_CLIENT} closed its connection\.$"), DisconnectReason.CONNECTION_CLOSED),
    (
        re.compile(rf"Socket error on client {_CLIENT}, disconnecting\.$"),
        DisconnectReason.SOCKET_ERROR,
    ),
    (re.compile(rf"Bad socket read/write on client {_CLIENT}:"), DisconnectReason.SOCKET_ERROR),
    (
        re.compile(rf"Client {_CLIENT} has exceeded timeout, disconnecting\.$"),
        DisconnectReason.KEEPALIVE_TIMEOUT,
    ),
    (
        re.compile(rf"Client {_CLIENT} already connected, closing old connection\.$"),
        DisconnectReason.TAKEN_OVER,
    ),
    (
        re.compile(rf"Client {_CLIENT} been disconnected by administrative action\.$"),
        DisconnectReason.ADMINISTRATIVE,
    ),
    (
        re.compile(rf"Client {_CLIENT} disconnected, (?:no longer )?not authorised\.$"),
        DisconnectReason.NOT_AUTHORISED,
    ),
    (re.compile(rf"Client {_CLIENT} disconnected due to "), DisconnectReason.PROTOCOL_ERROR),
    (re.compile(rf"Client {_CLIENT} disconnected: "), DisconnectReason.ERROR),
]

# Bounded, oldest dropped: addresses that connected and have not yet said who they are, and
# client ids whose current connection is not a device's (the bridge's evictions, mostly).
_MAX_PENDING = 10_000
_listener_of: dict[str, int] = {}
_not_device: dict[str, None] = {}

_connected_hooks: list[ConnectedHook] = []
_disconnected_hooks: list[DisconnectedHook] = []


def on_connected(hook: ConnectedHook) -> None:
    """Call `hook(DeviceConnected)` as each device connects to the device listener."""
    if hook not in _connected_hooks:
        _connected_hooks.append(hook)
    _listen()


def on_disconnected(hook: DisconnectedHook) -> None:
    """Call `hook(DeviceDisconnected)` as each device's connection ends, whatever the cause."""
    if hook not in _disconnected_hooks:
        _disconnected_hooks.append(hook)
    _listen()


def remove_hook(hook: ConnectedHook | DisconnectedHook) -> None:
    for hooks in (_connected_hooks, _disconnected_hooks):
        if hook in hooks:
            hooks.remove(hook)


def _listen() -> None:
    # Isolated: the hooks keep their writes in their own atomic blocks or batches (last_seen),
    # and touch no table another batched handler caches, so they need no savepoint.
    filters = (topics.BROKER_LOG_NOTICE, topics.BROKER_LOG_ERROR)
    router.subscribe(BROKER_LOG, handle, *filters, isolated=True)


def handle(message: router.InboundMessage) -> None:
    event = read_line(message.payload.decode("utf-8", "replace"), message.received_at)
    if isinstance(event, DeviceConnected):
        for hook in list(_connected_hooks):
            hook(event)
    elif isinstance(event, DeviceDisconnected):
        for hook in list(_disconnected_hooks):
            hook(event)


def read_line(line: str, at: datetime) -> DeviceConnected | DeviceDisconnected | None:
    """The device event of one log line, if any (the log's time stamp before it is skipped by
    the search). Remembers what the pairing of lines needs."""
    text = line.strip()
    if match := _NEW_CONNECTION.search(text):
        _remember(_listener_of, match["peer"], int(match["port"]))
        return None
    if match := _CONNECTED.search(text):
        return _connected(match, at)
    for pattern, reason in _DISCONNECTS:
        if match := pattern.search(text):
            if match["client"] in _not_device:
                del _not_device[match["client"]]
                return None  # that connection was not a device's
            return DeviceDisconnected(match["client"], reason, at, _logged_at(text))
    return None


def _logged_at(text: str) -> datetime | None:
    """The line's own time stamp: the broker's wall clock in whole seconds, read as UTC. Only
    ever compared with other lines' stamps (which line of one broker came first), never with
    the portal's clock, so the broker's zone does not matter."""
    stamp = _STAMP.match(text)
    if stamp is None:
        return None
    if stamp["epoch"]:
        return datetime.fromtimestamp(int(stamp["epoch"]), UTC)
    return datetime.fromisoformat(stamp["iso"]).replace(tzinfo=UTC)


def _connected(match: re.Match, at: datetime) -> DeviceConnected | None:
    client, peer = match["client"], match["peer"]
    username = _USERNAME.search(match["flags"])
    listener = _listener_of.pop(peer, None)
    if listener != settings.BROKER_DEVICE_PORT or not username or username["username"] != client:
        _remember(_not_device, client, None)
        return None
    _not_device.pop(client, None)
    address, _, port = peer.rpartition(":")
    if not port.isdigit():
        return None
    return DeviceConnected(client, address.strip("[]"), int(port), at, _logged_at(match.string))


def _remember(table: dict, key: str, value) -> None:
    table.pop(key, None)  # a key set again moves to the end, dropped last
    if len(table) >= _MAX_PENDING:
        del table[next(iter(table))]
    table[key] = value
