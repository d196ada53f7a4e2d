"""Device connections and disconnections from the broker's log, as events any app can hear."""

import time

import pytest
from django.conf import settings
from django.utils import timezone

from fleetportal.bridge import connections, transport
from fleetportal.bridge.connections import DeviceConnected, DeviceDisconnected, DisconnectReason
from tests.mqtt.clients import make_identity

AT = timezone.now()


def read(line: str):
    return connections.read_line(f"2026-11-28T12:46:42: {line}", AT)


def connect(client: str, peer: str, *, port: int | None = None, username: str | None = None):
    """The two lines of one connection; the event of the second."""
    assert (
        read(f"New connection from {peer} on port {port or settings.BROKER_DEVICE_PORT}.") is None
    )
    return read(
        f"New client connected from {peer} as {client} (p2, c1, k60, u'{username or client}')."
    )


def test_the_two_lines_of_a_device_connection_make_one_event():
    assert connect("dev-1", "10.1.2.3:50724") == DeviceConnected("dev-1", "10.1.2.3", 50724, AT)


def test_ipv6_addresses_and_lines_without_a_timestamp():
    connections.read_line(
        f"New connection from ::1:40000 on port {settings.BROKER_DEVICE_PORT}.", AT
    )
    event = connections.read_line(
        "New client connected from ::1:40000 as d (p2, c0, k30, u'd').", AT
    )
    assert (event.address, event.port) == ("::1", 40000)


def test_connections_that_are_not_a_devices_own_make_no_event():
    # Another listener (the backend's), and a client id that is not the certificate's CN.
    assert connect("dev-2", "10.0.0.1:1", port=settings.BROKER_DEVICE_PORT + 1) is None
    assert connect("dev-3", "10.0.0.2:2", username="someone-else") is None
    # A connection whose first line was missed: its listener is unknown.
    assert read("New client connected from 10.9.9.9:1 as dev-4 (p2, c1, k60, u'dev-4').") is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Client dev-5 disconnected.", DisconnectReason.DISCONNECTED),
        ("Client dev-5 closed its connection.", DisconnectReason.CONNECTION_CLOSED),
        ("Socket error on client dev-5, disconnecting.", DisconnectReason.SOCKET_ERROR),
        ("Client dev-5 has exceeded timeout, disconnecting.", DisconnectReason.KEEPALIVE_TIMEOUT),
        ("Client dev-5 already connected, closing old connection.", DisconnectReason.TAKEN_OVER),
        (
            "Client dev-5 been disconnected by administrative action.",
            DisconnectReason.ADMINISTRATIVE,
        ),
        ("Client dev-5 disconnected, not authorised.", DisconnectReason.NOT_AUTHORISED),
        ("Client dev-5 disconnected due to malformed packet.", DisconnectReason.PROTOCOL_ERROR),
        ("Client dev-5 disconnected due to oversize packet.", DisconnectReason.PROTOCOL_ERROR),
        ("Client dev-5 disconnected: Connection reset by peer.", DisconnectReason.ERROR),
        ("Bad socket read/write on client dev-5: Unknown error", DisconnectReason.SOCKET_ERROR),
    ],
)
def test_each_way_mosquitto_ends_a_connection_is_a_disconnect_with_its_reason(line, reason):
    assert connect("dev-5", "10.0.0.5:5") is not None

    assert read(line) == DeviceDisconnected("dev-5", reason, AT)


@pytest.mark.parametrize(
    "line",
    [
        "Client <unknown> closed its connection.",
        "Client connection from 127.0.0.1 failed: error:0A000126:SSL routines::unexpected eof.",
        "New client connected from 10.0.0.1:5 as x",  # cut short
        "OpenSSL Error[0]: error:0A000126:SSL routines::unexpected eof while reading",
        "",
        "\ufffd\ufffd",
    ],
)
def test_other_lines_make_no_event(line):
    assert read(line) is None


def test_the_end_of_a_connection_that_was_not_a_devices_makes_no_event():
    """The bridge evicts a device by connecting with its client id on the backend listener:
    the device's connection ends (taken over); the bridge's own end is not the device's."""
    connect("dev-6", "10.0.0.6:6")
    assert read("Client dev-6 already connected, closing old connection.").reason == "taken_over"
    assert connect("dev-6", "127.0.0.1:7", port=settings.BROKER_DEVICE_PORT + 1) is None

    assert read("Client dev-6 disconnected.") is None
    # The device comes back: its connection and its end are reported again.
    assert connect("dev-6", "10.0.0.6:8") is not None
    assert read("Client dev-6 disconnected.") is not None


def test_a_disconnect_is_reported_for_a_connection_made_before_the_bridge_started():
    assert read("Client dev-7 closed its connection.") == DeviceDisconnected(
        "dev-7", DisconnectReason.CONNECTION_CLOSED, AT
    )


class Events:
    """Hooks on both events, removed by the fixture."""

    def __init__(self):
        self.seen: list[DeviceConnected | DeviceDisconnected] = []

    def of(self, client_id: str) -> list:
        return [e for e in self.seen if e.client_id == client_id]

    def hook(self, event) -> None:
        self.seen.append(event)


@pytest.fixture
def events(broker):
    events = Events()
    connections.on_connected(events.hook)
    connections.on_disconnected(events.hook)
    yield events
    connections.remove_hook(events.hook)


def kinds(events: list) -> list[str]:
    return [e.reason if isinstance(e, DeviceDisconnected) else "connected" for e in events]


pytestmark_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytestmark_db
def test_a_device_connecting_and_disconnecting_is_heard_over_the_real_broker(
    events, bridge, broker, device_client
):
    device = device_client(make_identity(broker, "conn-1"))
    assert bridge.wait_until(lambda: len(events.of("conn-1")) == 1, timeout=10)
    connected = events.of("conn-1")[0]
    assert isinstance(connected, DeviceConnected)
    assert connected.address == "127.0.0.1" and connected.port > 0

    device.close()  # an MQTT DISCONNECT

    assert bridge.wait_until(lambda: len(events.of("conn-1")) == 2, timeout=10)
    assert kinds(events.of("conn-1")) == ["connected", "disconnected"]


@pytestmark_db
def test_a_dropped_connection_is_heard_as_closed(events, bridge, broker, device_client):
    device = device_client(make_identity(broker, "conn-2"))
    assert bridge.wait_until(lambda: len(events.of("conn-2")) == 1, timeout=10)

    device.client.loop_stop()
    device.client.socket().close()  # no DISCONNECT, as a device that loses power

    assert bridge.wait_until(lambda: len(events.of("conn-2")) == 2, timeout=10)
    assert kinds(events.of("conn-2")) == ["connected", "connection_closed"]


@pytestmark_db
def test_an_evicted_device_is_heard_as_taken_over_once(events, bridge, broker, device_client):
    device = device_client(make_identity(broker, "conn-3"))
    device.client.reconnect_delay_set(60, 60)  # stays away, so the log holds only the eviction
    assert bridge.wait_until(lambda: len(events.of("conn-3")) == 1, timeout=10)

    assert transport.evict("conn-3")

    assert bridge.wait_until(lambda: len(events.of("conn-3")) == 2, timeout=10)
    time.sleep(0.5)  # the evicting connection's own end comes next, and must not be reported
    assert kinds(events.of("conn-3")) == ["connected", "taken_over"]


def test_the_bridge_reads_the_notice_and_error_logs_for_connection_events():
    from fleetportal import topics
    from fleetportal.bridge import router

    assert topics.parse("$SYS/broker/log/E").kind == topics.parse("$SYS/broker/log/N").kind
    assert {"$SYS/broker/log/N", "$SYS/broker/log/E"} <= set(router.subscriptions())
