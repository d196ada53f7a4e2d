"""Reliability of the real bridge process: kill -9 under load, broker outage, REST to device.

Restarting PostgreSQL under load is not tested here: the machine's one PostgreSQL cluster is
shared with other test sessions (the bridge's retry policy is covered in tests/test_bridge.py
with injected OperationalErrors).
"""

import threading
import time

import orjson
import pytest

from devices.choices import DeviceStatus
from shadows.models import Shadow, ShadowHistory
from tests.devices.credential_helpers import credentialed, identity_of
from tests.e2e.bridge_process import BridgeProcess, persistent_bridge_session, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UPDATES = 600


@pytest.fixture
def bridge_process(broker, tmp_path):
    with persistent_bridge_session():
        process = BridgeProcess(broker, tmp_path / "bridge.log")
        yield process
        process.stop()


def version_of(device_id: str) -> int:
    row = Shadow.objects.filter(device__device_id=device_id, name="").first()
    return row.version if row else 0


def test_kill_9_under_load_applies_every_accepted_update_exactly_once(
    broker, device_client, bridge_process
):
    device = credentialed("e2e-kill-1", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))
    topic = "$aws/things/e2e-kill-1/shadow/update"
    bridge_process.start()
    published = []

    def publish_all() -> None:
        # Pipelined in bursts (paho keeps up to 20 in flight), so the bridge sees batches, not
        # singles; 90 a second on average, within the broker's limit of 100/s per device.
        infos = []
        for n in range(1, UPDATES + 1):
            body = {"state": {"reported": {"counter": n}}, "clientToken": f"t-{n}"}
            infos.append((n, client.client.publish(topic, orjson.dumps(body), qos=1)))
            if n % 45 == 0:
                time.sleep(0.5)
        for n, info in infos:
            info.wait_for_publish(30)
            if info.is_published():  # the broker's PUBACK: it accepted this update
                published.append(n)

    publisher = threading.Thread(target=publish_all)
    publisher.start()
    try:
        # Kill it twice while it works, at different points of the stream.
        for threshold in (UPDATES // 5, UPDATES // 2):
            assert wait_until(lambda t=threshold: version_of("e2e-kill-1") >= t, 60), (
                bridge_process.log()
            )
            bridge_process.kill()
            time.sleep(0.3)  # the device keeps publishing into the broker meanwhile
            bridge_process.start()
    finally:
        publisher.join(60)
    assert published == list(range(1, UPDATES + 1))  # every one PUBACKed by the broker

    assert wait_until(lambda: version_of("e2e-kill-1") >= UPDATES, 60), bridge_process.log()
    time.sleep(0.5)  # anything redelivered late would now show up as an extra version
    shadow = Shadow.objects.get(device=device.device, name="")
    history = list(ShadowHistory.objects.filter(shadow=shadow).order_by("version"))
    assert shadow.version == UPDATES
    assert shadow.reported_state == {"counter": UPDATES}
    assert [h.version for h in history] == list(range(1, UPDATES + 1))
    assert [h.client_token for h in history] == [f"t-{n}" for n in range(1, UPDATES + 1)]


def test_desired_set_through_rest_while_the_broker_is_down_reaches_the_device(
    broker, device_client, bridge_process, operator_api
):
    device = credentialed("e2e-rest-1", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device), clean_session=False)
    delta_topic = "$aws/things/e2e-rest-1/shadow/update/delta"
    client.subscribe(delta_topic)
    bridge_process.start()

    with broker.stopped():
        response = operator_api.patch(
            "/api/v1/devices/e2e-rest-1/shadows/~classic/",
            {"desired": {"fan": "high"}},
            format="json",
        )
        assert response.status_code == 200, response.content

    delta = orjson.loads(client.expect(delta_topic, timeout=30).payload)
    assert delta["state"] == {"fan": "high"} and delta["version"] == 1
