"""last_ip_address from the broker's connection log ($SYS/broker/log/N): the address a device
connected from, only for the device listener and only when the client id is its certificate's.
The lines are read by fleetportal.bridge.connections (tests/bridge/test_connections.py)."""

import dataclasses

import pytest
from django.conf import settings
from django.utils import timezone

from devices import credentials
from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal import topics
from fleetportal.bridge import router
from tests.conftest import make_device
from tests.devices.credential_helpers import credentialed, csr_pem, identity_of


def log_line(text: str) -> router.InboundMessage:
    payload = f"2026-11-28T12:46:42: {text}".encode()
    route = topics.parse(topics.BROKER_LOG_NOTICE)
    return router.InboundMessage(topics.BROKER_LOG_NOTICE, payload, route, timezone.now())


@pytest.mark.django_db
def test_only_the_device_listener_and_the_devices_own_identity_count():
    make_device("log-dev", status=DeviceStatus.ACTIVE)
    port = settings.BROKER_DEVICE_PORT
    lines = [
        # On another listener (the claim port) with the device's client id.
        (f"New connection from 10.0.0.1:1 on port {port + 1}.", None),
        ("New client connected from 10.0.0.1:1 as log-dev (p2, c1, k60, u'claim-cn').", None),
        # On the device listener, but the client id is not the certificate's CN.
        (f"New connection from 10.0.0.2:2 on port {port}.", None),
        ("New client connected from 10.0.0.2:2 as log-dev (p2, c1, k60, u'other').", None),
        # The device itself.
        (f"New connection from 10.0.0.3:3 on port {port}.", None),
        ("New client connected from 10.0.0.3:3 as log-dev (p2, c1, k60, u'log-dev').", "10.0.0.3"),
    ]
    for text, expected in lines:
        router.dispatch(log_line(text))
        assert Device.objects.get(device_id="log-dev").last_ip_address == expected


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_device_connecting_over_mqtt_gets_its_address_recorded(bridge, broker, device_client):
    device = credentialed("log-mqtt", status=DeviceStatus.ACTIVE)
    assert device.device.last_ip_address is None

    device_client(identity_of(broker, device))  # connects; publishes nothing

    def recorded():
        return Device.objects.get(device_id="log-mqtt").last_ip_address == "127.0.0.1"

    assert bridge.wait_until(recorded, timeout=10)
    assert Device.objects.get(device_id="log-mqtt").last_seen is not None


@pytest.mark.django_db
def test_a_connection_marks_the_certificates_first_use_but_not_a_rotation_in_waiting(identity_env):
    device = credentialed("used-1", status=DeviceStatus.ACTIVE)
    pending = credentials.request_rotation(device.device, csr_pem("used-1"), actor="device")
    port = settings.BROKER_DEVICE_PORT
    at = timezone.now()

    router.dispatch(log_line(f"New connection from 10.0.0.4:4 on port {port}."))
    message = log_line("New client connected from 10.0.0.4:4 as used-1 (p2, c1, k60, u'used-1').")
    router.dispatch(dataclasses.replace(message, received_at=at))

    device.credential.refresh_from_db()
    pending.refresh_from_db()
    assert device.credential.first_used_at == at
    assert pending.first_used_at is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_mqtt_only_device_gets_its_certificates_first_use(bridge, broker, device_client):
    device = credentialed("used-mqtt", status=DeviceStatus.ACTIVE)

    device_client(identity_of(broker, device))

    def used():
        device.credential.refresh_from_db()
        return device.credential.first_used_at is not None

    assert bridge.wait_until(used, timeout=10)
