"""Revocation against the real broker: the device is evicted and stays out; others stay in."""

import time

import pytest

from devices import revocation
from devices.choices import DeviceStatus
from tests.devices.credential_helpers import (
    credentialed,
    identity_of,
    pki_ready,  # noqa: F401
    refused_at_broker,
)
from tests.mqtt.clients import DeviceClient, Refused

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("pki_ready"),
]


def connected_device(broker, device_client, device_id: str):
    device = credentialed(device_id, status=DeviceStatus.ACTIVE)
    identity = identity_of(broker, device)
    return device, identity, device_client(identity)


def assert_still_served(client: DeviceClient, device_id: str) -> None:
    topic = f"devices/{device_id}/echo"
    client.subscribe(topic)
    client.publish(topic, b"still here")
    assert client.expect(topic).payload == b"still here"


def assert_kept_out(broker, clients: list[tuple[DeviceClient, object]], clicked: float) -> None:
    """Within 5 s of the click each session is gone and a new connection is refused."""
    for client, _ in clients:
        assert client.disconnected.wait(5 - (time.monotonic() - clicked)), "session not evicted"
    for _, identity in clients:
        with pytest.raises(Refused):
            DeviceClient(broker, identity).connect()
    assert time.monotonic() - clicked < 5
    time.sleep(0.5)  # paho keeps retrying in the background: every attempt must fail
    assert not any(client.connected.is_set() for client, _ in clients)


def test_revoked_device_is_evicted_within_5_seconds_and_cannot_reconnect(
    broker, device_client, operator_api
):
    victim, identity, victim_client = connected_device(broker, device_client, "victim-1")
    _, _, bystander_client = connected_device(broker, device_client, "bystander-1")

    clicked = time.monotonic()
    response = operator_api.post(
        f"/api/v1/devices/victim-1/credentials/{victim.credential.fingerprint}/revoke/",
        {"reason": "keyCompromise"},
    )

    assert response.status_code == 200
    assert_kept_out(broker, [(victim_client, identity)], clicked)
    assert bystander_client.connected.is_set()
    assert_still_served(bystander_client, "bystander-1")


def test_decommissioned_device_is_evicted_and_refused(broker, device_client, operator_api):
    _, identity, client = connected_device(broker, device_client, "retired-1")
    _, _, bystander_client = connected_device(broker, device_client, "bystander-2")

    clicked = time.monotonic()
    response = operator_api.post(
        "/api/v1/devices/retired-1/transition/", {"status": "decommissioned"}
    )

    assert response.status_code == 200
    assert_kept_out(broker, [(client, identity)], clicked)
    assert_still_served(bystander_client, "bystander-2")


def test_device_with_a_live_certificate_connects(broker, device_client):
    _, identity, client = connected_device(broker, device_client, "healthy-1")
    assert_still_served(client, "healthy-1")
    client.close()
    assert not refused_at_broker(broker, identity, within=0)


@pytest.fixture
def eager_celery():
    from fleetportal.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_bulk_decommissioning_evicts_through_a_celery_task(
    broker, device_client, client, operator, monkeypatch, eager_celery
):
    monkeypatch.setattr(revocation, "EVICT_INLINE_MAX", 1)
    fleet = [connected_device(broker, device_client, f"bulk-{n}") for n in range(3)]
    client.force_login(operator)

    clicked = time.monotonic()
    client.post(
        "/admin/devices/device/",
        {
            "action": "to_decommissioned",
            "_selected_action": [str(device.device.pk) for device, _, _ in fleet],
        },
    )

    assert_kept_out(broker, [(client_, identity) for _, identity, client_ in fleet], clicked)
