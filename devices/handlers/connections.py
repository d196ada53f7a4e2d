"""A device's IP address (last_ip_address) and its certificate's first use, as it connects.

fleetportal.bridge.connections reads the broker's connection log and reports each device
connection (device listener, client id = certificate CN). The connection also counts as a sign of
life, and as a certificate's first use for devices that never call the HTTP device API.
"""

from devices import credentials, last_seen
from fleetportal.bridge import connections


def register() -> None:
    connections.on_connected(on_connected)


def on_connected(event: connections.DeviceConnected) -> None:
    last_seen.seen(event.client_id, event.at, event.address)
    credentials.record_connection(event.client_id, event.at)
