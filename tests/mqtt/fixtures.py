"""pytest fixtures for MQTT tests (registered by tests/conftest.py as a plugin).

- `broker`: one real Mosquitto per test session (per xdist worker) from the portal's generated
  configuration, with its own CA in a temporary directory; settings point at both for the
  whole session (FLEETPORTAL_CA_DIR, BROKER_DIR, BROKER_*_PORT).
- `device_client`: connect as a device with an identity from tests.mqtt.clients.make_identity.
- `bridge`: the bridge runner and the outbox publisher in threads (tests using it need
  `@pytest.mark.django_db(transaction=True, serialized_rollback=True)`).
"""

import itertools

import pytest

from tests.mqtt.bridge import BridgeThreads
from tests.mqtt.broker import start_mosquitto
from tests.mqtt.clients import DeviceClient

_bridges = itertools.count(1)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    mosquitto, override = start_mosquitto(tmp_path_factory.mktemp("mqtt"))
    try:
        yield mosquitto
    finally:
        mosquitto.stop()
        override.disable()


@pytest.fixture
def device_client(broker):
    """connect(identity, port=None, **options) -> a connected DeviceClient, closed afterwards."""
    clients = []

    def connect(identity, **options) -> DeviceClient:
        client = DeviceClient(broker, identity, **options)
        clients.append(client)
        return client.connect()

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def bridge(broker):
    """The bridge (runner + publisher) in threads, with a session of its own for this test."""
    threads = BridgeThreads(client_id=f"fleetportal.bridge.test{next(_bridges)}")
    threads.start()
    try:
        yield threads
    finally:
        threads.stop(forget_session=True)
