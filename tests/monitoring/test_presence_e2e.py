"""A real device through the real broker and bridge: connect, drop without DISCONNECT with a
last will, reconnect; a backend subscriber receives the AWS lifecycle events, another device
cannot."""

import orjson
import pytest

from devices.choices import DeviceStatus
from devices.models import DeviceEvent
from fleetportal import topics
from fleetportal.bridge import transport
from monitoring.models import Presence
from tests.devices.credential_helpers import credentialed, identity_of
from tests.mqtt.clients import DeviceClient, make_identity


def _presence(device_id):
    return Presence.objects.filter(device__device_id=device_id).first()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_device_connecting_dropping_with_a_will_and_reconnecting(bridge, broker, device_client):
    device = credentialed("e2e-p1", status=DeviceStatus.ACTIVE)
    identity = identity_of(broker, device)
    listener = transport.Connection("fleetportal.test-lifecycle", clean_session=True)
    listener.subscribe([topics.lifecycle_filter()])
    listener.connect()
    assert listener.wait_subscribed(5)
    snoop = device_client(make_identity(broker, "e2e-snoop"))
    snoop.subscribe(topics.lifecycle_filter())
    try:
        client = DeviceClient(broker, identity)
        client.client.will_set(
            topics.device_topic("e2e-p1", "presence"), b'{"state": "offline"}', qos=1
        )
        client.connect()
        assert bridge.wait_until(
            lambda: (p := _presence("e2e-p1")) is not None and p.online, timeout=10
        )
        connected = listener.messages.get(timeout=10)
        assert connected.topic == "$aws/events/presence/connected/e2e-p1"
        assert orjson.loads(connected.payload)["eventType"] == "connected"

        # Drop the TCP connection without DISCONNECT: the broker publishes the will.
        client.client.socket().close()
        client.client.loop_stop()
        assert bridge.wait_until(lambda: not _presence("e2e-p1").online, timeout=15)
        assert _presence("e2e-p1").reason in ("connection_closed", "socket_error", "last_will")
        disconnected = listener.messages.get(timeout=10)
        assert disconnected.topic == "$aws/events/presence/disconnected/e2e-p1"
        assert orjson.loads(disconnected.payload)["clientInitiatedDisconnect"] is False

        again = device_client(identity)
        assert bridge.wait_until(lambda: _presence("e2e-p1").online, timeout=10)
        assert _presence("e2e-p1").connections == 2
        again.close()
        assert bridge.wait_until(lambda: not _presence("e2e-p1").online, timeout=10)
        assert _presence("e2e-p1").reason == "client_disconnect"
        snoop.expect_nothing(0.5)  # no device reads another's lifecycle events
    finally:
        listener.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_takeover_publishes_the_old_wills_yet_the_device_stays_online(
    bridge, broker, device_client
):
    """Mosquitto 2.0 logs the takeover before the new connect line and publishes the old
    connection's will as it closes it: that will must not mark the new connection offline."""
    device = credentialed("e2e-p2", status=DeviceStatus.ACTIVE)
    identity = identity_of(broker, device)
    old = DeviceClient(broker, identity)
    old.client.will_set(topics.device_topic("e2e-p2", "presence"), b'{"state": "offline"}', qos=1)
    old.connect()
    assert bridge.wait_until(
        lambda: (p := _presence("e2e-p2")) is not None and p.online, timeout=10
    )
    old.client.reconnect_delay_set(60, 120)  # the old client must not fight back
    wills = transport.Connection("fleetportal.test-wills", clean_session=True)
    wills.subscribe([topics.device_topic("e2e-p2", "presence")])
    wills.connect()
    assert wills.wait_subscribed(5)
    try:
        device_client(identity)  # the same client id: the broker closes the old connection

        assert orjson.loads(wills.messages.get(timeout=5).payload) == {"state": "offline"}
        assert bridge.wait_until(lambda: _presence("e2e-p2").connections == 2, timeout=10)
        bridge.wait_until(lambda: False, timeout=1)  # the bridge has had the will too
        assert _presence("e2e-p2").online
        reasons = DeviceEvent.objects.filter(
            device__device_id="e2e-p2", event_type__in=("device_online", "device_offline")
        ).order_by("created_at", "id")
        assert [e.event_data["reason"] for e in reasons] == ["connected", "taken_over", "connected"]
    finally:
        wills.close()
        old.client.loop_stop()
