"""The generated Mosquitto configuration, against a real Mosquitto (device-protocol.md §7)."""

import contextlib
import io
import queue
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from devices import pki
from devices.models import ProvisioningTemplate
from fleetportal import broker as broker_config
from fleetportal.bridge import transport
from tests.mqtt.clients import Refused, make_expired_identity, make_identity


def test_device_exchanges_messages_on_its_own_topics(broker, device_client):
    device = device_client(make_identity(broker, "sensor-1"))
    portal = device_client(make_identity(broker, "sensor-1-observer"))
    device.subscribe("devices/sensor-1/commands")
    device.subscribe("$aws/things/sensor-1/shadow/update/accepted")

    backend = transport.Connection("fleetportal.test-backend", clean_session=True)
    backend.subscribe(["devices/+/telemetry"])
    backend.connect()
    assert backend.wait_subscribed(5)
    try:
        device.publish("devices/sensor-1/telemetry", b'{"cpu": 3}')
        received = backend.messages.get(timeout=5)
        assert (received.topic, received.payload) == ("devices/sensor-1/telemetry", b'{"cpu": 3}')

        backend.publish("devices/sensor-1/commands", b"reboot").wait(5)
        backend.publish("$aws/things/sensor-1/shadow/update/accepted", b"{}").wait(5)
        assert device.expect("devices/sensor-1/commands").payload == b"reboot"
        device.expect("$aws/things/sensor-1/shadow/update/accepted")
    finally:
        backend.close()
    portal.expect_nothing(0.2)


def test_second_device_never_receives_the_first_ones_messages(broker, device_client):
    first = device_client(make_identity(broker, "meter-1"))
    second = device_client(make_identity(broker, "meter-2"))
    # Mosquitto grants every SUBSCRIBE (§7.3): isolation shows only in what is delivered.
    second.subscribe("devices/meter-1/#")
    second.subscribe("$aws/things/meter-1/#")
    second.subscribe("#")
    first.subscribe("devices/meter-1/commands")

    first.publish("devices/meter-1/telemetry", b"secret")
    first.publish("$aws/things/meter-1/shadow/update", b"{}")
    backend_send("devices/meter-1/commands", b"for meter-1 only")

    first.expect("devices/meter-1/commands")
    second.expect_nothing(0.5)


def test_device_cannot_publish_into_another_devices_topics(broker, device_client):
    victim = device_client(make_identity(broker, "pump-1"))
    intruder = device_client(make_identity(broker, "pump-2"))
    victim.subscribe("devices/pump-1/#")
    victim.subscribe("$aws/things/pump-1/#")

    intruder.publish("devices/pump-1/commands", b"open valve")
    intruder.publish("$aws/things/pump-1/shadow/update/delta", b"{}")

    victim.expect_nothing(0.5)


def test_client_id_is_the_certificate_cn(broker, device_client):
    """A device cannot take over another's session by choosing its client id."""
    victim = device_client(make_identity(broker, "lamp-1"))
    device_client(make_identity(broker, "lamp-2"), client_id="lamp-1")

    assert victim.connected.is_set()
    assert not victim.disconnected.wait(0.5)


def test_certificate_from_another_ca_is_refused(broker, device_client, tmp_path):
    other_ca = pki.create_ca(tmp_path / "other-ca")

    with pytest.raises(Refused):
        device_client(make_identity(broker, "rogue-1", ca=other_ca))


def test_expired_certificate_is_refused(broker, device_client):
    with pytest.raises(Refused):
        device_client(make_expired_identity(broker, "old-1"))


def test_revoked_certificate_is_refused_after_publish_crl(broker, device_client):
    revoked = make_identity(broker, "stolen-1")
    other = make_identity(broker, "honest-1")
    device_client(revoked).close()

    assert broker.publish_crl([(revoked.serial_number, datetime.now(UTC), "keyCompromise")])

    with pytest.raises(Refused):
        device_client(revoked)
    device_client(other)


def test_evict_disconnects_a_connected_device(broker, device_client):
    device = device_client(make_identity(broker, "evicted-1"))

    assert transport.evict("evicted-1")

    assert device.disconnected.wait(5)


def test_claim_certificate_can_use_only_its_templates_provisioning_topics(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False), ("factory-b", True)])
    claim = make_identity(broker, broker_config.claim_username("factory-a"))
    factory = device_client(claim, port=broker.claim_port, client_id="claim.factory-a.1")
    observer = transport.Connection("fleetportal.test-claim", clean_session=True)
    observer.subscribe(["$aws/#"])
    observer.connect()
    assert observer.wait_subscribed(5)
    try:
        factory.subscribe("$aws/certificates/create-from-csr/json/accepted")
        factory.subscribe("devices/+/commands")
        factory.publish("$aws/certificates/create-from-csr/json", b"{}")
        factory.publish("$aws/provisioning-templates/factory-a/provision/json", b"{}")
        factory.publish("$aws/provisioning-templates/factory-b/provision/json", b"{}")
        factory.publish("$aws/certificates/create/json", b"{}")
        factory.publish("$aws/things/someone/shadow/update", b"{}")
        assert received_topics(observer, 0.5) == [
            "$aws/certificates/create-from-csr/json",
            "$aws/provisioning-templates/factory-a/provision/json",
        ]
        backend_send("$aws/certificates/create-from-csr/json/accepted", b"{}")
        backend_send("devices/someone/commands", b"{}")
        factory.expect("$aws/certificates/create-from-csr/json/accepted")
        factory.expect_nothing(0.3)
    finally:
        observer.close()


def test_device_certificate_has_no_rights_on_the_claim_listener(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False)])
    device = device_client(make_identity(broker, "sneaky-1"), port=broker.claim_port)
    observer = transport.Connection("fleetportal.test-claim2", clean_session=True)
    observer.subscribe(["$aws/#", "devices/#"])
    observer.connect()
    assert observer.wait_subscribed(5)
    try:
        device.publish("$aws/certificates/create-from-csr/json", b"{}")
        device.publish("devices/sneaky-1/telemetry", b"{}")
        assert received_topics(observer, 0.5) == []
    finally:
        observer.close()


@pytest.mark.django_db
def test_broker_config_command_opens_the_claim_listener_to_enabled_templates(broker, device_client):
    ProvisioningTemplate.objects.create(name="line-1", device_type="sensor")
    ProvisioningTemplate.objects.create(name="line-2", device_type="sensor", enabled=False)

    output = io.StringIO()
    call_command("broker_config", "--bind-address", "127.0.0.1", stdout=output)

    assert "reloaded the running broker" in output.getvalue()
    observer = transport.Connection("fleetportal.test-claim3", clean_session=True)
    observer.subscribe(["$aws/#"])
    observer.connect()
    assert observer.wait_subscribed(5)
    try:
        for name in ("line-1", "line-2"):
            claim = make_identity(broker, broker_config.claim_username(name))
            factory = device_client(claim, port=broker.claim_port, client_id=f"claim.{name}.1")
            factory.publish(f"$aws/provisioning-templates/{name}/provision/json", b"{}")
        assert received_topics(observer, 0.5) == [
            "$aws/provisioning-templates/line-1/provision/json"
        ]
    finally:
        observer.close()


def listener_lines(config: str) -> list[str]:
    return [line for line in config.splitlines() if line.startswith("listener ")]


def test_every_listener_binds_the_loopback_address_by_default(settings, tmp_path):
    config = broker_config.render_config(
        tmp_path, device_port=8883, claim_port=8884, backend_port=18830, user="fp"
    )

    assert listener_lines(config) == [
        "listener 8883 127.0.0.1",
        "listener 8884 127.0.0.1",
        "listener 18830 127.0.0.1",
    ]


def test_opening_the_device_listeners_keeps_the_backend_local(settings, broker):
    settings.BROKER_BIND_ADDRESS = ""
    config = broker_config.write_config().read_text()
    settings.BROKER_BIND_ADDRESS = "127.0.0.1"
    broker_config.write_config()

    assert listener_lines(config) == [
        f"listener {broker.device_port}",
        f"listener {broker.claim_port}",
        f"listener {broker.backend_port} 127.0.0.1",
    ]


def test_reload_without_a_running_broker_is_a_no_op(settings, tmp_path):
    settings.BROKER_DIR = tmp_path

    assert broker_config.reload() is False


def test_publish_crl_refuses_a_crl_from_another_ca(broker, tmp_path):
    other = pki.create_ca(tmp_path / "other")
    before = (broker.dir / broker_config.CRL_FILE).read_bytes()

    with pytest.raises(broker_config.BrokerError):
        broker_config.publish_crl(pki.build_crl(other, [], next_update_hours=1))
    with pytest.raises(broker_config.BrokerError):
        broker_config.publish_crl(b"not a crl")

    assert (broker.dir / broker_config.CRL_FILE).read_bytes() == before


def received_topics(connection: transport.Connection, quiet: float) -> list[str]:
    """Topics received until nothing more arrives for `quiet` seconds."""
    topics = []
    with contextlib.suppress(queue.Empty):
        while True:
            topics.append(connection.messages.get(timeout=quiet).topic)
    return topics


def backend_send(topic: str, payload: bytes) -> None:
    connection = transport.Connection("fleetportal.test-sender", clean_session=True)
    connection.connect()
    try:
        assert connection.publish(topic, payload).wait(5)
    finally:
        connection.close()
