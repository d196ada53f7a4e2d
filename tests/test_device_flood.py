"""One device flooding the broker: its excess is dropped and counted, the others keep their pace;
payloads over the 128 KB limit never reach the portal."""

import statistics
import time

import orjson
import pytest

from devices.choices import DeviceStatus, EventType
from devices.models import DeviceEvent
from fleetportal.bridge import throttle
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FLOOD = 5_000


def connect(broker, device_client, device_id: str):
    device = credentialed(device_id, status=DeviceStatus.ACTIVE)
    return device_client(identity_of(broker, device))


def shadow_get_latencies(client, device_id: str, count: int) -> list[float]:
    topic = f"$aws/things/{device_id}/shadow/get"
    latencies = []
    for n in range(count):
        sent = time.monotonic()
        client.publish(topic, orjson.dumps({"clientToken": f"t{n}"}))
        client.expect(f"{topic}/rejected", timeout=30)  # no shadow yet: 404, as fast as any reply
        latencies.append(time.monotonic() - sent)
    return latencies


def test_a_flooding_device_is_cut_to_its_rate_and_the_others_keep_their_latency(
    bridge, broker, device_client, monkeypatch
):
    monkeypatch.setattr(throttle, "REPORT_SECONDS", 0.5)
    flooder = connect(broker, device_client, "flood-1")
    calm = connect(broker, device_client, "calm-1")
    calm.subscribe("$aws/things/calm-1/shadow/get/rejected")

    for _ in range(FLOOD):
        flooder.client.publish("$aws/things/flood-1/shadow/update", b"not json", qos=0)
    latencies = shadow_get_latencies(calm, "calm-1", 20)

    assert statistics.median(latencies) < 0.2, latencies
    assert max(latencies) < 1.0, latencies
    assert bridge.wait_until(
        lambda: DeviceEvent.objects.filter(event_type=EventType.THROTTLED).exists(), 10
    )
    time.sleep(1)  # the last report
    events = DeviceEvent.objects.filter(event_type=EventType.THROTTLED)
    assert {event.device.device_id for event in events} == {"flood-1"}
    dropped = sum(event.event_data["dropped_messages"] for event in events)
    # The broker let a burst through, dropped 1,000 more and then ended the connection
    # (FLEETPORTAL_DEVICE_FLOOD_DISCONNECT_AFTER); the rest of the flood never left the device.
    assert dropped >= 1_000
    assert flooder.disconnected.is_set()


def test_the_broker_drops_a_payload_over_128_kb_and_ends_a_connection_sending_a_huge_one(
    broker, device_client
):
    device = connect(broker, device_client, "big-1")
    topic = "devices/big-1/echo"
    device.subscribe(topic)

    device.publish(topic, b"x" * (200 * 1024))
    device.expect_nothing(1.0)
    device.publish(topic, b"y" * (100 * 1024))
    assert device.expect(topic).payload == b"y" * (100 * 1024)

    device.client.publish(topic, b"z" * (300 * 1024))
    assert device.disconnected.wait(5)
