"""The rotation MQTT handlers, driven through the bridge's router (no broker needed)."""

import orjson
import pytest

from devices.choices import CredentialStatus, DeviceStatus
from devices.models import DeviceCredential
from fleetportal import topics
from fleetportal.bridge import router
from fleetportal.models import OutboxMessage
from tests.devices.credential_helpers import (
    credentialed,
    csr_pem,
    pki_ready,  # noqa: F401
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]


def deliver(topic: str, payload) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    assert router.dispatch(router.InboundMessage(topic, body, topics.parse(topic)))


def replies() -> list[tuple[str, dict]]:
    return [(m.topic, orjson.loads(bytes(m.payload))) for m in OutboxMessage.objects.order_by("id")]


def test_bridge_subscribes_to_every_devices_rotation_topics():
    assert {"devices/+/certificates/rotate", "devices/+/certificates/confirm"} <= set(
        router.subscriptions()
    )


def test_rotate_replies_with_the_certificate_and_survives_redelivery():
    device = credentialed("valve-1", status=DeviceStatus.ACTIVE)
    request = {"certificateSigningRequest": csr_pem("valve-1"), "clientToken": "abc"}

    deliver("devices/valve-1/certificates/rotate", request)
    deliver("devices/valve-1/certificates/rotate", request)  # the broker redelivered it

    (topic, first), (_, second) = replies()
    assert topic == "devices/valve-1/certificates/rotate/accepted"
    assert first == second
    assert first["clientToken"] == "abc" and "BEGIN CERTIFICATE" in first["certificatePem"]
    new = DeviceCredential.objects.get(fingerprint=first["certificateId"])
    assert new.replaces == device.credential
    assert OutboxMessage.objects.filter(device_id="valve-1").count() == 2


def test_confirm_revokes_the_replaced_certificate():
    device = credentialed("valve-2", status=DeviceStatus.ACTIVE)
    deliver("devices/valve-2/certificates/rotate", {"certificateSigningRequest": csr_pem(None)})
    new_id = replies()[0][1]["certificateId"]

    deliver("devices/valve-2/certificates/confirm", {"certificateId": new_id})

    assert replies()[1] == (
        "devices/valve-2/certificates/confirm/accepted",
        {"certificateId": new_id},
    )
    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.REVOKED


@pytest.mark.parametrize(
    ("device_id", "payload", "code"),
    [
        ("valve-3", b"{", "invalid_payload"),
        ("valve-3", [1, 2], "invalid_payload"),
        ("valve-3", {"clientToken": "t"}, "invalid_payload"),
        ("valve-3", {"certificateSigningRequest": "junk", "clientToken": "t"}, "malformed_csr"),
        ("ghost-3", {"certificateSigningRequest": "junk", "clientToken": "t"}, "unknown_device"),
    ],
)
def test_bad_rotation_requests_are_rejected(device_id, payload, code):
    credentialed("valve-3", status=DeviceStatus.ACTIVE)

    deliver(f"devices/{device_id}/certificates/rotate", payload)

    [(topic, reply)] = replies()
    assert topic == f"devices/{device_id}/certificates/rotate/rejected"
    assert reply["code"] == code and reply["message"]
    if isinstance(payload, dict):
        assert reply["clientToken"] == "t"
    assert DeviceCredential.objects.count() == 1


def test_confirming_an_unknown_certificate_is_rejected():
    credentialed("valve-4", status=DeviceStatus.ACTIVE)
    deliver(
        "devices/valve-4/certificates/confirm", {"certificateId": "00" * 32, "clientToken": "x"}
    )
    [(topic, reply)] = replies()
    assert topic == "devices/valve-4/certificates/confirm/rejected"
    assert reply == {
        "code": "unknown_certificate",
        "message": f"Device valve-4 has no certificate {'00' * 32!r}.",
        "clientToken": "x",
    }
