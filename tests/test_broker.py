"""The generated Mosquitto configuration, against a real Mosquitto (device-protocol.md §7)."""

import contextlib
import io
import queue
import time
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as paho_mqtt
import pytest
from django.core.management import call_command

from devices import pki
from devices.models import ProvisioningTemplate
from fleetportal import broker as broker_config
from fleetportal import topics
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


def claim_request(client_id: str, template: str, topic: str) -> str:
    """How a claim client's request reaches the portal: tagged with who sent it."""
    return topics.claim_request(client_id, broker_config.claim_username(template), topic)


def test_claim_requests_reach_the_portal_tagged_with_their_sender(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False), ("factory-b", True)])
    claim = make_identity(broker, broker_config.claim_username("factory-a"))
    factory = device_client(claim, port=broker.claim_port, client_id="line 1/station+4")
    observer = transport.Connection("fleetportal.test-claim", clean_session=True)
    observer.subscribe(["fleetportal/claim/#", "$aws/#"])
    observer.connect()
    assert observer.wait_subscribed(5)
    try:
        factory.publish("$aws/certificates/create-from-csr/json", b"{}")
        factory.publish("$aws/provisioning-templates/factory-a/provision/json", b"{}")
        factory.publish("$aws/provisioning-templates/factory-b/provision/json", b"{}")
        factory.publish("$aws/certificates/create/json", b"{}")
        factory.publish("$aws/things/someone/shadow/update", b"{}")
        factory.publish("fleetportal/claim-reply/00/$aws/x", b"{}")
        assert received_topics(observer, 0.5) == [
            claim_request("line 1/station+4", "factory-a", topics.CREATE_FROM_CSR),
            claim_request("line 1/station+4", "factory-a", topics.provision("factory-a")),
        ]
    finally:
        observer.close()


def test_a_claim_reply_reaches_only_the_client_that_asked(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False), ("factory-b", False)])
    accepted = topics.accepted(topics.CREATE_FROM_CSR)
    clients = {}
    for template, client_id in (("factory-a", "a-1"), ("factory-a", "a-2"), ("factory-b", "b-1")):
        claim = make_identity(broker, broker_config.claim_username(template))
        clients[client_id] = device_client(claim, port=broker.claim_port, client_id=client_id)
        clients[client_id].subscribe(accepted)
        clients[client_id].subscribe("$aws/#")

    backend_send(topics.claim_reply(topics.claim_client("a-1"), accepted), b"for a-1")
    backend_send(accepted, b"published on the device broker")

    assert clients["a-1"].expect(accepted).payload == b"for a-1"
    for client in clients.values():
        client.expect_nothing(0.5)


def test_the_claim_port_refuses_device_certificates(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False)])
    with pytest.raises(Refused):
        device_client(make_identity(broker, "sneaky-1"), port=broker.claim_port)


def flood(broker, device_client, device_id: str, messages: int):
    """`messages` QoS 0 telemetry from one device, then one from a calm device a second later
    (the broker reports drops with the listener's next event); what the portal received."""
    flooder = device_client(make_identity(broker, device_id))
    calm = device_client(make_identity(broker, f"calm-{device_id}"))
    observer = transport.Connection(f"fleetportal.test-{device_id}", clean_session=True)
    observer.subscribe(["devices/+/telemetry", topics.BROKER_THROTTLED])
    observer.connect()
    assert observer.wait_subscribed(5)
    try:
        for n in range(messages):
            flooder.client.publish(f"devices/{device_id}/telemetry", b"%d" % n, qos=0)
        for n in range(20):
            calm.publish(f"devices/calm-{device_id}/telemetry", b"%d" % n)
        time.sleep(1.1)
        calm.publish(f"devices/calm-{device_id}/telemetry", b"20")
        received = []
        with contextlib.suppress(queue.Empty):
            while True:
                received.append(observer.messages.get(timeout=1.5))
    finally:
        observer.close()
    topics_received = [m.topic for m in received]
    assert topics_received.count(f"devices/calm-{device_id}/telemetry") == 21
    passed = topics_received.count(f"devices/{device_id}/telemetry")
    reports = [orjson.loads(m.payload) for m in received if m.topic == topics.BROKER_THROTTLED]
    assert all(set(r["dropped"]) == {device_id} for r in reports), reports
    return flooder, passed, sum(r["dropped"][device_id] for r in reports)


def test_the_broker_cuts_a_fast_device_to_its_rate_and_reports_what_it_dropped(
    broker, device_client
):
    flooder, passed, dropped = flood(broker, device_client, "flood-b1", 600)

    assert 100 <= passed < 300, passed  # the burst of 100 and what the rate refilled meanwhile
    assert dropped == 600 - passed
    assert flooder.connected.is_set()


def test_the_broker_disconnects_a_device_that_keeps_flooding(broker, device_client):
    flooder, passed, dropped = flood(broker, device_client, "flood-b2", 3_000)

    assert 100 <= passed < 300, passed
    assert dropped == 1_000  # FLEETPORTAL_DEVICE_FLOOD_DISCONNECT_AFTER over its rate in 1 s
    assert flooder.disconnected.is_set()
    assert "disconnecting flood-b2: 1000 messages over its rate" in broker.log()


def test_a_device_disconnected_for_flooding_is_banned_for_a_while(broker, device_client):
    identity = make_identity(broker, "flood-b3")
    flooder = device_client(identity)
    for n in range(3_000):
        flooder.client.publish("devices/flood-b3/telemetry", b"%d" % n, qos=0)
    assert flooder.disconnected.wait(5)

    # It may connect again (TLS comes before any plugin), but its first message is dropped and
    # ends the connection: a flood resumed after each reconnect costs one message, not a burst.
    again = device_client(identity)
    observer = device_client(make_identity(broker, "calm-b3"))
    again.publish("devices/flood-b3/telemetry", b"after")
    assert again.disconnected.wait(5)
    observer.publish("devices/calm-b3/telemetry", b"calm")  # the others are not banned
    assert observer.connected.is_set()
    assert "banned for 60 s" in broker.log()


def test_a_revoked_claim_certificate_is_refused_by_the_claim_broker(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False)])
    leaked = make_identity(broker, broker_config.claim_username("factory-a"))
    kept = make_identity(broker, broker_config.claim_username("factory-a"))
    device_client(leaked, port=broker.claim_port, client_id="line-9").close()

    assert broker.publish_crl([(leaked.serial_number, datetime.now(UTC), "keyCompromise")])

    with pytest.raises(Refused):
        device_client(leaked, port=broker.claim_port, client_id="line-9")
    device_client(kept, port=broker.claim_port, client_id="line-9")


def test_a_claim_connection_cannot_take_over_a_device_session(broker, device_client):
    broker_config.write_claim_acl([("factory-a", False)])
    victim = device_client(make_identity(broker, "victim-1"), clean_session=False)
    victim.subscribe("devices/victim-1/commands")
    claim = make_identity(broker, broker_config.claim_username("factory-a"))
    for _ in range(3):
        device_client(claim, port=broker.claim_port, client_id="victim-1", clean_session=True)

    assert not victim.disconnected.wait(0.5)
    backend_send("devices/victim-1/commands", b"still yours")
    assert victim.expect("devices/victim-1/commands").payload == b"still yours"


@pytest.mark.django_db
def test_broker_config_command_opens_the_claim_broker_to_enabled_templates(broker, device_client):
    ProvisioningTemplate.objects.create(name="line-1", device_type="sensor")
    ProvisioningTemplate.objects.create(name="line-2", device_type="sensor", enabled=False)

    output = io.StringIO()
    call_command("broker_config", "--bind-address", "127.0.0.1", stdout=output)

    assert "reloaded the running broker" in output.getvalue()
    observer = transport.Connection("fleetportal.test-claim3", clean_session=True)
    observer.subscribe(["fleetportal/claim/#"])
    observer.connect()
    assert observer.wait_subscribed(5)
    try:
        for name in ("line-1", "line-2"):
            claim = make_identity(broker, broker_config.claim_username(name))
            factory = device_client(claim, port=broker.claim_port, client_id=f"claim.{name}.1")
            factory.publish(f"$aws/provisioning-templates/{name}/provision/json", b"{}")
        assert received_topics(observer, 0.5) == [
            claim_request("claim.line-1.1", "line-1", topics.provision("line-1"))
        ]
    finally:
        observer.close()


def listener_lines(config: str) -> list[str]:
    return [line for line in config.splitlines() if line.startswith("listener ")]


def test_every_listener_binds_the_loopback_address_by_default(settings, tmp_path):
    config = broker_config.render_config(tmp_path, device_port=8883, backend_port=18830, user="fp")
    backend = broker_config.BackendCredentials("127.0.0.1", 18830, "u", "p", tmp_path / "ca")
    claims = broker_config.render_claim_config(
        tmp_path, claim_port=8884, backend=backend, plugin=tmp_path / "p.so", user="fp"
    )

    assert listener_lines(config) == ["listener 8883 127.0.0.1", "listener 18830 127.0.0.1"]
    assert listener_lines(claims) == ["listener 8884 127.0.0.1"]


def test_opening_the_device_listeners_keeps_the_backend_local(settings, broker):
    settings.BROKER_BIND_ADDRESS = ""
    config = broker_config.write_config().read_text()
    claims = (broker.dir / broker_config.CLAIM_CONFIG).read_text()
    settings.BROKER_BIND_ADDRESS = "127.0.0.1"
    broker_config.write_config()

    assert listener_lines(config) == [
        f"listener {broker.device_port}",
        f"listener {broker.backend_port} 127.0.0.1",
    ]
    assert listener_lines(claims) == [f"listener {broker.claim_port}"]


def test_the_claim_brokers_config_is_private_it_holds_the_backend_password(broker):
    claims = broker.dir / broker_config.CLAIM_CONFIG
    assert claims.stat().st_mode & 0o777 == 0o600
    assert broker_config.backend_password() in claims.read_text()


def test_broker_config_refuses_to_run_without_the_claim_plugin(settings, broker, tmp_path):
    settings.BROKER_PLUGIN_DIR = str(tmp_path)
    with pytest.raises(broker_config.BrokerError, match="make install"):
        broker_config.write_config()


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


def test_a_device_hears_its_own_jobs_notifications_and_not_another_devices(broker, device_client):
    own, other = "jobs-dev-1", "jobs-dev-2"
    device = device_client(make_identity(broker, own))
    snoop = device_client(make_identity(broker, other))
    device.subscribe(topics.jobs_topic(own, topics.JOBS_NOTIFY))
    device.subscribe(topics.jobs_topic(own, topics.JOBS_NOTIFY_NEXT))
    device.subscribe(topics.jobs_topic(own, topics.JOBS_UPDATE, "job-1", "accepted"))
    # Mosquitto grants every SUBSCRIBE (§7.3): isolation shows only in what is delivered.
    snoop.subscribe(topics.jobs_topic(own, topics.JOBS_NOTIFY))
    snoop.subscribe(f"{topics.thing_prefix(own)}/jobs/#")

    for topic in (
        topics.jobs_topic(own, topics.JOBS_NOTIFY),
        topics.jobs_topic(own, topics.JOBS_NOTIFY_NEXT),
        topics.jobs_topic(own, topics.JOBS_UPDATE, "job-1", "accepted"),
    ):
        backend_send(topic, b"{}")
        device.expect(topic)
    snoop.expect_nothing(0.5)


def test_jobs_requests_reach_the_portal_only_from_the_device_they_name(broker, device_client):
    device = device_client(make_identity(broker, "jobs-dev-3"))
    intruder = device_client(make_identity(broker, "jobs-dev-4"))
    portal = transport.Connection("fleetportal.test-jobs", clean_session=True)
    portal.subscribe(
        [topics.jobs_filter(topics.JOBS_UPDATE), topics.jobs_filter(topics.JOBS_GET_PENDING)]
    )
    portal.connect()
    assert portal.wait_subscribed(5)
    try:
        device.publish(topics.jobs_topic("jobs-dev-3", topics.JOBS_UPDATE, "job-1"), b"{}")
        device.publish(topics.jobs_topic("jobs-dev-3", topics.JOBS_GET_PENDING), b"{}")
        intruder.publish(topics.jobs_topic("jobs-dev-3", topics.JOBS_UPDATE, "job-1"), b"{}")
        assert received_topics(portal, 0.5) == [
            "$aws/things/jobs-dev-3/jobs/job-1/update",
            "$aws/things/jobs-dev-3/jobs/get",
        ]
    finally:
        portal.close()


def test_the_device_acl_holds_every_topic_built_for_a_device_and_none_of_anothers():
    """The ACL is rendered from the builders the bridge uses, so no device topic falls outside."""
    patterns = [
        line.removeprefix("pattern readwrite ")
        for line in broker_config.render_device_acl().splitlines()
        if line.startswith("pattern ")
    ]
    built = [
        topics.shadow_topic("d-1", "", "update", "accepted"),
        topics.shadow_topic("d-1", "config", "get"),
        topics.device_topic("d-1", "telemetry"),
        topics.certificates_expiring("d-1"),
        topics.jobs_topic("d-1", topics.JOBS_DESCRIBE, "$next", "accepted"),
        topics.jobs_topic("d-1", topics.JOBS_START_NEXT),
        topics.jobs_topic("d-1", topics.JOBS_NOTIFY_NEXT),
    ]

    def allowed(topic: str, username: str) -> bool:
        return any(
            paho_mqtt.topic_matches_sub(pattern.replace("%u", username), topic)
            for pattern in patterns
        )

    assert all(allowed(topic, "d-1") for topic in built)
    assert not any(allowed(topic, "d-2") for topic in built)
