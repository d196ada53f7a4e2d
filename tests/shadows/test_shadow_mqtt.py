"""Shadows over a real Mosquitto and the bridge: a device with a portal-issued certificate."""

import orjson
import pytest

from devices.choices import DeviceStatus
from shadows import services
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def connect(broker, device_client, device_id: str, **options):
    device = credentialed(device_id, status=DeviceStatus.ACTIVE)
    return device_client(identity_of(broker, device), **options)


def payload(message) -> dict:
    return orjson.loads(message.payload)


def test_classic_update_get_delete_round_trip(bridge, broker, device_client):
    client = connect(broker, device_client, "sh-mqtt-1")
    p = "$aws/things/sh-mqtt-1/shadow"
    for operation in ("update", "get", "delete"):
        client.subscribe(f"{p}/{operation}/+")

    client.publish(
        f"{p}/update", orjson.dumps({"state": {"desired": {"on": 1}}, "clientToken": "u"})
    )
    accepted = payload(client.expect(f"{p}/update/accepted"))
    assert accepted["version"] == 1 and accepted["clientToken"] == "u"
    documents = payload(client.expect(f"{p}/update/documents"))
    assert documents["current"]["state"] == {"desired": {"on": 1}}
    delta = payload(client.expect(f"{p}/update/delta"))
    assert delta["state"] == {"on": 1} and delta["version"] == 1

    client.publish(f"{p}/get", orjson.dumps({"clientToken": "g"}))
    got = payload(client.expect(f"{p}/get/accepted"))
    assert got["state"]["delta"] == {"on": 1} and got["clientToken"] == "g"

    client.publish(f"{p}/delete", orjson.dumps({"clientToken": "d"}))
    assert payload(client.expect(f"{p}/delete/accepted")) | {"timestamp": 0} == {
        "version": 1,
        "timestamp": 0,
        "clientToken": "d",
    }

    client.publish(f"{p}/get", orjson.dumps({"clientToken": "g2"}))
    rejected = payload(client.expect(f"{p}/get/rejected"))
    assert rejected["code"] == 404 and rejected["clientToken"] == "g2"


def test_named_shadow_and_rejected_update(bridge, broker, device_client):
    client = connect(broker, device_client, "sh-mqtt-2")
    p = "$aws/things/sh-mqtt-2/shadow/name/config"
    client.subscribe(f"{p}/update/accepted")
    client.subscribe(f"{p}/update/rejected")

    client.publish(
        f"{p}/update", orjson.dumps({"state": {"reported": {"a": 1}}, "clientToken": "1"})
    )
    assert payload(client.expect(f"{p}/update/accepted"))["version"] == 1

    client.publish(
        f"{p}/update",
        orjson.dumps({"state": {"reported": {"a": 2}}, "version": 9, "clientToken": "2"}),
    )
    rejected = payload(client.expect(f"{p}/update/rejected"))
    assert (rejected["code"], rejected["message"], rejected["clientToken"]) == (
        409,
        "Version conflict",
        "2",
    )
    client.publish(f"{p}/update", b"\xff not utf-8")
    assert payload(client.expect(f"{p}/update/rejected"))["code"] == 415
    assert services.find("sh-mqtt-2", "config").reported_state == {"a": 1}


def test_desired_set_while_broker_is_down_reaches_the_device_when_it_returns(
    bridge, broker, device_client
):
    # A persistent session, as devices keep: the subscription survives the broker's restart.
    client = connect(broker, device_client, "sh-mqtt-3", clean_session=False)
    p = "$aws/things/sh-mqtt-3/shadow"
    client.subscribe(f"{p}/update/delta")

    with broker.stopped():
        services.set_desired("sh-mqtt-3", "", {"fan": "high"}, actor="user:otto")

    delta = payload(client.expect(f"{p}/update/delta", timeout=15))
    assert delta["state"] == {"fan": "high"} and delta["version"] == 1


def test_updates_resent_after_a_reconnect_keep_their_first_versions(bridge, broker, device_client):
    from shadows.models import Shadow

    client = connect(broker, device_client, "sh-resend-1")
    p = "$aws/things/sh-resend-1/shadow"
    client.subscribe(f"{p}/update/accepted")
    updates = [
        orjson.dumps({"state": {"reported": {"n": n}}, "clientToken": f"r{n}"}) for n in range(3)
    ]
    for _ in range(2):  # sent, then resent as after a lost connection (no DUP reaches us)
        for update in updates:
            client.publish(f"{p}/update", update)

    answers = [payload(client.expect(f"{p}/update/accepted")) for _ in range(6)]
    assert [(a["clientToken"], a["version"]) for a in answers] == [
        ("r0", 1),
        ("r1", 2),
        ("r2", 3),
        ("r0", 1),
        ("r1", 2),
        ("r2", 3),
    ]
    assert Shadow.objects.get(device__device_id="sh-resend-1").version == 3
