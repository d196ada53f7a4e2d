"""Certificate rotation end to end: real broker, real bridge, a device with its own keys."""

import json

import pytest
from rest_framework.test import APIClient

from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.models import Device, DeviceCredential
from fleetportal import broker as broker_files
from tests.devices.credential_helpers import (
    bearer,
    credentialed,
    csr_pem,
    device_jwt,
    identity_of,
    new_key,
    pki_ready,  # noqa: F401
    refused_at_broker,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("pki_ready"),
]


def request(client, topic: str, body: dict, reply: str = "accepted") -> dict:
    client.subscribe(f"{topic}/+")
    client.publish(topic, json.dumps(body))
    return json.loads(client.expect(f"{topic}/{reply}", timeout=10).payload)


def test_device_rotates_over_mqtt_and_the_old_certificate_is_then_refused(
    broker, bridge, device_client
):
    device = credentialed("rotor-1")
    assert device.device.status == DeviceStatus.PROVISIONING
    old_identity = identity_of(broker, device)
    client = device_client(old_identity)
    new_device_key = new_key()

    accepted = request(
        client,
        "devices/rotor-1/certificates/rotate",
        {"certificateSigningRequest": csr_pem("rotor-1", new_device_key), "clientToken": "t-1"},
    )

    assert accepted["clientToken"] == "t-1"
    new_id = accepted["certificateId"]
    # Its first authenticated message activated the device.
    assert Device.objects.get(device_id="rotor-1").status == DeviceStatus.ACTIVE
    # Until the new certificate is used, the old one keeps working.
    assert DeviceCredential.objects.get(pk=device.credential.pk).status == CredentialStatus.ACTIVE
    client.close()
    new_identity = identity_of(broker, device, new_device_key, accepted["certificatePem"])
    new_client = device_client(new_identity)

    reload_offset = len(broker.log().encode())
    confirmed = request(
        new_client,
        "devices/rotor-1/certificates/confirm",
        {"certificateId": new_id, "clientToken": "t-2"},
    )

    assert confirmed == {"certificateId": new_id, "clientToken": "t-2"}
    old = DeviceCredential.objects.get(pk=device.credential.pk)
    assert (old.status, old.revocation_reason) == (CredentialStatus.REVOKED, "superseded")
    assert broker_files.wait_for_log(broker_files.RELOAD_LOG_LINE, reload_offset)
    assert refused_at_broker(broker, old_identity, within=0)
    assert new_client.connected.is_set()
    events = Device.objects.get(device_id="rotor-1").events
    assert events.filter(event_type=EventType.CREDENTIAL_ROTATED).count() == 1


def test_rotation_request_for_another_device_is_rejected_with_the_client_token(
    broker, bridge, device_client
):
    device = credentialed("rotor-2", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))

    rejected = request(
        client,
        "devices/rotor-2/certificates/rotate",
        {"certificateSigningRequest": csr_pem("rotor-3"), "clientToken": "t-3"},
        reply="rejected",
    )

    assert rejected["code"] == "cn_mismatch" and rejected["clientToken"] == "t-3"
    assert "rotor-3" in rejected["message"]
    assert DeviceCredential.objects.filter(device=device.device).count() == 1


def test_malformed_rotation_request_is_rejected(broker, bridge, device_client):
    device = credentialed("rotor-4", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))
    client.subscribe("devices/rotor-4/certificates/rotate/+")

    client.publish("devices/rotor-4/certificates/rotate", b"not json")

    reply = client.expect("devices/rotor-4/certificates/rotate/rejected", timeout=10)
    assert json.loads(reply.payload)["code"] == "invalid_payload"


def test_rotation_over_http_then_the_broker_refuses_the_old_certificate(broker, device_client):
    device = credentialed("rotor-5", status=DeviceStatus.ACTIVE)
    old_identity = identity_of(broker, device)
    new_device_key = new_key()
    http = APIClient()

    rotated = http.post(
        "/device/v1/certificates/rotate",
        {"certificateSigningRequest": csr_pem("rotor-5", new_device_key)},
        format="json",
        **bearer(device.jwt()),
    ).json()
    assert not refused_at_broker(broker, old_identity, within=0)

    # The first request signed with the new key completes the rotation.
    token = device_jwt(new_device_key, "rotor-5", kid=rotated["certificateId"])
    assert http.get("/device/v1/whoami", **bearer(token)).status_code == 200

    assert refused_at_broker(broker, old_identity)
    new_identity = identity_of(broker, device, new_device_key, rotated["certificatePem"])
    assert device_client(new_identity).connected.is_set()
