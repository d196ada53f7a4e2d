"""The HTTP device API for shadows (AWS's data plane, device-protocol.md §1.9), with device JWTs."""

import json

import pytest
from rest_framework.test import APIClient

from fleetportal.models import OutboxMessage
from shadows import services
from shadows.models import Shadow
from tests.devices.credential_helpers import (
    bearer,
    credentialed,
    device_jwt,
    new_key,
    pki_ready,  # noqa: F401
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]


def url(thing: str, name: str | None = None) -> str:
    return f"/device/v1/things/{thing}/shadow" + (f"?name={name}" if name else "")


@pytest.fixture
def device():
    return credentialed("dev-http1")


def call(device, method: str, body: bytes | None = None, *, name=None, thing=None, token=None):
    client = APIClient()
    kwargs = bearer(token or device.jwt())
    target = url(thing or device.device_id, name)
    if body is not None:
        return getattr(client, method)(target, data=body, content_type="application/json", **kwargs)
    return getattr(client, method)(target, **kwargs)


def test_device_updates_gets_and_deletes_its_classic_shadow(device):
    update = call(
        device,
        "post",
        b'{"state":{"reported":{"temp":21},"desired":{"fan":"on"}},"clientToken":"t1"}',
    )
    assert update.status_code == 200, update.content
    assert update.json()["version"] == 1
    assert update.json()["clientToken"] == "t1"
    assert update.json()["state"] == {"reported": {"temp": 21}, "desired": {"fan": "on"}}

    got = call(device, "get")
    assert got.status_code == 200
    assert got.json()["state"]["delta"] == {"fan": "on"}
    assert got.json()["version"] == 1

    # The same service fans the replies out over MQTT.
    topics = set(OutboxMessage.objects.values_list("topic", flat=True))
    assert "$aws/things/dev-http1/shadow/update/accepted" in topics
    assert "$aws/things/dev-http1/shadow/update/delta" in topics

    deleted = call(device, "delete")
    assert deleted.status_code == 200
    assert deleted.json()["version"] == 1 and "timestamp" in deleted.json()
    missing = call(device, "get")
    assert missing.status_code == 404
    assert missing.json()["code"] == 404
    assert missing.json()["message"] == "No shadow exists with name: 'dev-http1'"


def test_named_shadows_are_addressed_with_the_name_parameter(device):
    assert call(device, "post", b'{"state":{"reported":{"a":1}}}', name="config").status_code == 200

    assert call(device, "get", name="config").json()["state"]["reported"] == {"a": 1}
    assert call(device, "get").status_code == 404  # the classic shadow does not exist
    bad = call(device, "get", name="no%20spaces")
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid shadow name"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "Invalid JSON"),
        (b'{"state":{"reported":{"a":[1,null]}}}', 400, "State contains an invalid node"),
        (b'{"state":{"desired":{"a":2}},"version":7}', 409, "Version conflict"),
        (b'{"state":{"reported":{"big":"' + b"x" * 9000 + b'"}}}', 413, None),
        (b'{"state":{"reported":{"a":"\xff"}}}', 415, None),
    ],
)
def test_rejected_update_is_an_aws_error_and_leaves_the_shadow_unchanged(
    device, body, status, message
):
    services.update(device.device, "", b'{"state":{"desired":{"a":1}}}', actor="x")
    before = Shadow.objects.values().get(device=device.device, name="")

    response = call(device, "post", body)

    assert response.status_code == status, response.content
    assert response.json()["code"] == status
    if message:
        assert response.json()["message"].startswith(message)
    assert Shadow.objects.values().get(device=device.device, name="") == before


def test_a_device_may_not_address_another_thing(device):
    other = credentialed("dev-http2")
    services.update(other.device, "", b'{"state":{"desired":{"a":1}}}', actor="x")

    for method, body in (("get", None), ("post", b'{"state":{"reported":{"a":9}}}')):
        response = call(device, method, body, thing=other.device_id)
        assert response.status_code == 403
        assert response.json()["code"] == 403
        assert "dev-http2" in response.json()["message"]
    assert call(device, "delete", thing=other.device_id).status_code == 403
    assert Shadow.objects.get(device=other.device).desired_state == {"a": 1}


def test_no_token_or_a_bad_token_is_401(device):
    services.update(device.device, "", b'{"state":{"desired":{"a":1}}}', actor="x")

    anonymous = APIClient().get(url(device.device_id))
    foreign_key = call(device, "get", token=device_jwt(new_key(), device.device_id))
    garbage = call(device, "post", b'{"state":{"reported":{"a":2}}}', token="not-a-jwt")

    for response in (anonymous, foreign_key, garbage):
        assert response.status_code == 401
        assert response.json()["code"] == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="device"'
    assert Shadow.objects.get(device=device.device).reported_state == {}


def test_integrator_tokens_are_not_accepted(device, operator_api):
    response = operator_api.get(url(device.device_id))
    assert response.status_code == 401


def test_body_over_the_request_limit_is_413(device):
    huge = json.dumps({"state": {"reported": {"a": "x" * 200_000}}}).encode()
    response = call(device, "post", huge)
    assert response.status_code == 413
    assert not Shadow.objects.filter(device=device.device, live=True).exists()
