"""A device never waits in silence: a request whose handler fails gets the internal error on its
rejected topic (clientToken echoed), and the other requests around it are served."""

import orjson
import pytest

from devices import credentials
from devices.choices import DeviceStatus
from shadows import batch
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def connect(broker, device_client, device_id: str):
    device = credentialed(device_id, status=DeviceStatus.ACTIVE)
    return device_client(identity_of(broker, device))


def update(client, device_id: str, token: str) -> None:
    body = {"state": {"reported": {"on": True}}, "clientToken": token}
    client.publish(f"$aws/things/{device_id}/shadow/update", orjson.dumps(body))


def test_a_failing_shadow_update_is_answered_with_an_internal_error(
    bridge, broker, device_client, monkeypatch
):
    real_handle = batch.handle

    def handle(operation, device_id, *args, **kwargs):
        if device_id == "broken-1":
            raise RuntimeError("a bug")
        return real_handle(operation, device_id, *args, **kwargs)

    monkeypatch.setattr(batch, "handle", handle)
    broken = connect(broker, device_client, "broken-1")
    healthy = connect(broker, device_client, "healthy-2")
    broken.subscribe("$aws/things/broken-1/shadow/update/+")
    healthy.subscribe("$aws/things/healthy-2/shadow/update/accepted")

    update(broken, "broken-1", "t-1")
    update(healthy, "healthy-2", "t-2")

    rejected = broken.expect("$aws/things/broken-1/shadow/update/rejected")
    document = orjson.loads(rejected.payload)
    assert document.pop("timestamp") > 0
    assert document == {"code": 500, "message": "Internal service failure", "clientToken": "t-1"}
    accepted = orjson.loads(healthy.expect("$aws/things/healthy-2/shadow/update/accepted").payload)
    assert accepted["clientToken"] == "t-2"


def test_a_failing_rotation_is_answered_on_its_rejected_topic(
    bridge, broker, device_client, monkeypatch
):
    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(credentials, "request_rotation", fail)
    client = connect(broker, device_client, "rotor-1")
    client.subscribe("devices/rotor-1/certificates/rotate/+")

    client.publish(
        "devices/rotor-1/certificates/rotate",
        orjson.dumps({"certificateSigningRequest": "x", "clientToken": "r-1"}),
    )

    document = orjson.loads(client.expect("devices/rotor-1/certificates/rotate/rejected").payload)
    assert (document["code"], document["clientToken"]) == ("internal_error", "r-1")
    assert document["message"] == "Internal service failure"
