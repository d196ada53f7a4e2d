"""Configuration end to end with a real broker and bridge: a group change reaches an online
device as a `config` shadow delta, an offline device when it reconnects, and the device's own
report marks the key applied."""

import orjson
import pytest

from devices.choices import DeviceStatus
from shadows.configuration import services as config
from shadows.models import DeviceConfiguration
from tests.conftest import make_group
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def topic(device_id: str, operation: str) -> str:
    return f"$aws/things/{device_id}/shadow/name/config/{operation}"


def applied(device, key: str) -> bool:
    return DeviceConfiguration.objects.filter(device=device, config_key=key, applied=True).exists()


def test_a_group_change_reaches_online_and_offline_devices_and_their_reports_apply_it(
    bridge, broker, device_client
):
    site = make_group("e2e-site")
    online = credentialed("e2e-cfg-on", status=DeviceStatus.ACTIVE, group=site)
    offline = credentialed("e2e-cfg-off", status=DeviceStatus.ACTIVE, group=site)

    live = device_client(identity_of(broker, online))
    live.subscribe(topic("e2e-cfg-on", "update/delta"))
    # The offline device has been connected before with a persistent session, then went away.
    away = device_client(identity_of(broker, offline), clean_session=False)
    away.subscribe(topic("e2e-cfg-off", "update/delta"))
    away.close()

    config.set_value("interval", 60, group=site, actor="otto")

    delta = orjson.loads(live.expect(topic("e2e-cfg-on", "update/delta"), timeout=15).payload)
    assert delta["state"] == {"interval": 60}

    back = device_client(identity_of(broker, offline), clean_session=False)
    delta = orjson.loads(back.expect(topic("e2e-cfg-off", "update/delta"), timeout=15).payload)
    assert delta["state"] == {"interval": 60}

    # Each device applies the value and reports it; the bridge marks the key applied.
    for client, issued in ((live, online), (back, offline)):
        accepted = topic(issued.device.device_id, "update/accepted")
        client.subscribe(accepted)
        client.publish(
            topic(issued.device.device_id, "update"),
            orjson.dumps({"state": {"reported": {"interval": 60}}, "clientToken": "c1"}),
        )
        client.expect(accepted, timeout=15)
        assert bridge.wait_until(lambda issued=issued: applied(issued.device, "interval"), 10)
    assert config.group_summary(site) == {"applied": 2, "pending": 0, "drift": 0}


def test_a_device_that_reconnects_with_a_clean_session_gets_its_configuration(
    bridge, broker, device_client
):
    device = credentialed("e2e-cfg-get", status=DeviceStatus.ACTIVE)
    config.set_value("mode", "eco", device=device.device, actor="otto")

    client = device_client(identity_of(broker, device))
    client.subscribe(topic("e2e-cfg-get", "get/+"))
    client.publish(topic("e2e-cfg-get", "get"), orjson.dumps({"clientToken": "g1"}))

    document = orjson.loads(client.expect(topic("e2e-cfg-get", "get/accepted"), timeout=15).payload)
    assert document["state"]["desired"] == {"mode": "eco"}
    assert document["state"]["delta"] == {"mode": "eco"}
    assert not applied(device.device, "mode")
