"""The per-device token bucket: a burst, then the rate; counted per device; memory stays small."""

import pytest

from fleetportal import topics
from fleetportal.bridge.throttle import DeviceThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_device_gets_its_burst_then_its_rate_and_the_rest_is_counted():
    clock = Clock()
    limit = DeviceThrottle(rate=10, burst=5, clock=clock)

    assert [limit.admit("a") for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 0.35  # 3.5 tokens
    assert [limit.admit("a") for _ in range(4)] == [True] * 3 + [False]
    assert limit.admit("b")  # another device has its own bucket
    assert limit.take_report() == {"a": 3}
    assert limit.take_report() == {}


def test_quiet_devices_are_forgotten_and_come_back_with_a_full_burst():
    clock = Clock()
    limit = DeviceThrottle(rate=10, burst=5, clock=clock)
    for _ in range(6):
        limit.admit("a")
    clock.now += 1.0
    limit.take_report()

    assert limit._buckets == {}
    assert all(limit.admit("a") for _ in range(5))


def test_a_throttle_needs_a_rate():
    with pytest.raises(ValueError):
        DeviceThrottle(rate=0, burst=5)


@pytest.mark.parametrize(
    ("topic", "device_id"),
    [
        ("devices/dev-1/telemetry", "dev-1"),
        ("$aws/things/dev-2/shadow/update", "dev-2"),
        ("$aws/things/dev-3/shadow/name/config/get", "dev-3"),
        ("$aws/certificates/create-from-csr/json", ""),
        ("$aws/provisioning-templates/line/provision/json", ""),
        ("$SYS/broker/log/N", ""),
        ("devices/dev-4", ""),
    ],
)
def test_device_of_names_the_device_of_a_device_topic(topic, device_id):
    assert topics.device_of(topic) == device_id
