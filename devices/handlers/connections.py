"""The broker's connection log: a device's IP address (last_ip_address) as it connects.

Mosquitto tells a subscriber nothing about a publisher's address, but it publishes its own log
on `$SYS/broker/log/<level>` (`log_dest topic` in the generated configuration). Two notice lines
per connection matter here:

    New connection from 10.1.2.3:50724 on port 8883.
    New client connected from 10.1.2.3:50724 as dev-1 (p2, c1, k60, u'dev-1').

The first says which listener the address came in on; the second, which client it became. An
address counts only for the device listener and only when the client id is the certificate's
CN (the username), so a claim-certificate holder using a device's client id on the claim port
is not recorded as that device. The lines are QoS 0: while no bridge runs they are lost, and
last_ip_address keeps its last known value. Partition 0 of several bridges holds the filter.
The same line is a certificate's first use for devices that never call the HTTP device API.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from devices import credentials, last_seen
from fleetportal import topics
from fleetportal.bridge import router

_NEW_CONNECTION = re.compile(r"New connection from (?P<peer>\S+) on port (?P<port>\d+)\.$")
_CONNECTED = re.compile(
    r"New client connected from (?P<peer>\S+) as (?P<client>\S+) \((?P<flags>[^)]*)\)\.$"
)
_USERNAME = re.compile(r"\bu'(?P<username>[^']*)'")

# Addresses that connected and have not yet said who they are: bounded, oldest dropped.
_MAX_PENDING = 10_000
_listener_of: dict[str, int] = {}


@dataclass(frozen=True)
class Connected:
    client_id: str
    username: str | None
    address: str  # without the port
    listener_port: int | None


def register() -> None:
    # Isolated: its writes (last_seen, batched; a certificate's first use, once) touch no table
    # another batched handler caches, so it needs no savepoint and no flush of the shadows'.
    router.register("broker_log", handle, topics.BROKER_LOG_NOTICE, isolated=True)


def handle(message: router.InboundMessage) -> None:
    connected = read_line(message.payload.decode("utf-8", "replace"))
    if connected is None or connected.listener_port != settings.BROKER_DEVICE_PORT:
        return
    if connected.username != connected.client_id:
        return
    last_seen.seen(connected.client_id, message.received_at, connected.address)
    credentials.record_connection(connected.client_id, message.received_at)


def read_line(line: str) -> Connected | None:
    """Note a `New connection` line; return the client of a `New client connected` line (the
    log timestamp before them, if any, is skipped by the search)."""
    text = line.strip()
    if match := _NEW_CONNECTION.search(text):
        if len(_listener_of) >= _MAX_PENDING:
            del _listener_of[next(iter(_listener_of))]
        _listener_of[match["peer"]] = int(match["port"])
        return None
    if match := _CONNECTED.search(text):
        username = _USERNAME.search(match["flags"])
        return Connected(
            client_id=match["client"],
            username=username["username"] if username else None,
            address=match["peer"].rsplit(":", 1)[0].strip("[]"),
            listener_port=_listener_of.pop(match["peer"], None),
        )
    return None
