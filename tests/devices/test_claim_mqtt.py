"""Provisioning by claim end to end: a real MQTT client, Mosquitto, the bridge and PostgreSQL."""

import time

import orjson
import pytest

from devices import provisioning
from devices.choices import CredentialStatus, DeviceStatus
from devices.models import Device, DeviceCredential, ProvisioningTemplate
from tests.conftest import make_device
from tests.devices.claim_helpers import key_pem, make_csr
from tests.mqtt.clients import Refused, make_identity, write_identity

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CSR = "$aws/certificates/create-from-csr/json"
PROVISION = "$aws/provisioning-templates/factory/provision/json"


@pytest.fixture
def template(broker):
    # save_template rewrites the claim ACL and reloads the broker once this commits.
    template = provisioning.save_template(
        ProvisioningTemplate(
            name="factory",
            device_type="thermostat",
            parameters={"SerialNumber": {"required": True}},
            device_id_template="thermo-{SerialNumber}",
            device_configuration={"interval": "60"},
        )
    )
    yield template
    provisioning.delete_template(template)


@pytest.fixture
def claim_identity(broker, template):
    claim = provisioning.issue_claim_certificate(template, actor="test")
    return write_identity(broker.dir / "clients", "claim.factory", claim.key_pem, claim.cert_pem)


def request(client, topic: str, body: dict) -> tuple[str, dict]:
    """Publish like the SDK's identity client: subscribed to both replies, matched by topic."""
    client.publish(topic, orjson.dumps(body))
    message = client.expect(timeout=10)
    assert message.topic in (topic + "/accepted", topic + "/rejected"), message.topic
    return message.topic.rsplit("/", 1)[1], orjson.loads(message.payload)


def connect_when_released(broker, device_client, identity, timeout: float = 5.0):
    # The hold is released after RegisterThing commits, while the reply is already on its way:
    # like the SDK's reconnect back-off, try again for a moment.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return device_client(identity)
        except Refused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_device_provisions_itself_by_claim_over_mqtt(broker, bridge, device_client, claim_identity):
    factory = device_client(claim_identity, port=broker.claim_port, client_id="line-1-station-4")
    for topic in (CSR, PROVISION):
        factory.subscribe(topic + "/+")

    key, csr = make_csr("thermo-0042")
    outcome, created = request(factory, CSR, {"certificateSigningRequest": csr})
    assert outcome == "accepted", created
    assert set(created) == {"certificateId", "certificatePem", "certificateOwnershipToken"}

    identity = write_identity(
        broker.dir / "clients", "thermo-0042", key_pem(key), created["certificatePem"]
    )
    with pytest.raises(Refused):
        device_client(identity)  # pending activation: held in the CRL

    outcome, provisioned = request(
        factory,
        PROVISION,
        {
            "certificateOwnershipToken": created["certificateOwnershipToken"],
            "parameters": {"SerialNumber": "0042"},
        },
    )
    assert (outcome, provisioned) == (
        "accepted",
        {"thingName": "thermo-0042", "deviceConfiguration": {"interval": "60"}},
    )
    device = Device.objects.get(device_id="thermo-0042")
    assert device.device_type == "thermostat"
    credential = DeviceCredential.objects.get(fingerprint=created["certificateId"])
    assert (credential.device, credential.status) == (device, CredentialStatus.ACTIVE)

    thermostat = connect_when_released(broker, device_client, identity)
    thermostat.subscribe("devices/thermo-0042/#")
    thermostat.publish("devices/thermo-0042/telemetry", b'{"temperature": 21}')
    assert thermostat.expect("devices/thermo-0042/telemetry").payload == b'{"temperature": 21}'
    assert device.status == DeviceStatus.PROVISIONING
    assert bridge.wait_until(
        lambda: Device.objects.get(pk=device.pk).status == DeviceStatus.ACTIVE
    ), "the first authenticated message did not activate the device"


def test_bad_requests_over_mqtt_get_the_identity_error_document(
    broker, bridge, device_client, claim_identity
):
    factory = device_client(claim_identity, port=broker.claim_port, client_id="line-1-station-5")
    for topic in (CSR, PROVISION):
        factory.subscribe(topic + "/+")

    outcome, error = request(factory, CSR, {"certificateSigningRequest": "garbage"})
    assert outcome == "rejected"
    assert (error["statusCode"], error["errorCode"]) == (400, "InvalidPayload")

    outcome, error = request(factory, PROVISION, {"certificateOwnershipToken": "stolen"})
    assert outcome == "rejected"
    assert error["errorCode"] == "InvalidCertificateOwnershipToken"

    _, created = request(factory, CSR, {"certificateSigningRequest": make_csr("thermo-0043")[1]})
    outcome, error = request(
        factory,
        PROVISION,
        {"certificateOwnershipToken": created["certificateOwnershipToken"], "parameters": {}},
    )
    assert (outcome, error["errorCode"]) == ("rejected", "InvalidPayload")
    assert not Device.objects.filter(device_id="thermo-0043").exists()


def test_claim_certificate_can_do_nothing_but_provision(
    broker, bridge, device_client, claim_identity
):
    make_device("thermo-0001")
    victim = device_client(make_identity(broker, "thermo-0001"))
    victim.subscribe("devices/thermo-0001/#")
    victim.subscribe("$aws/things/thermo-0001/#")
    for port in (broker.claim_port, broker.device_port):
        intruder = device_client(claim_identity, port=port, client_id=f"intruder-{port}")
        intruder.subscribe("devices/thermo-0001/#")
        intruder.subscribe("$aws/things/thermo-0001/#")
        intruder.subscribe("$aws/provisioning-templates/other/provision/json/+")
        intruder.publish("devices/thermo-0001/commands", b"{}")
        intruder.publish("$aws/things/thermo-0001/shadow/update", b'{"state": {}}')
        victim.expect_nothing(timeout=0.7)
        victim.publish("devices/thermo-0001/telemetry", b"{}")
        victim.publish("$aws/things/thermo-0001/shadow/name/x/update/accepted", b"{}")
        assert victim.expect().topic == "devices/thermo-0001/telemetry"  # its own, echoed
        assert victim.expect().topic == "$aws/things/thermo-0001/shadow/name/x/update/accepted"
        intruder.expect_nothing(timeout=0.7)


def test_claim_certificate_of_a_disabled_template_cannot_provision(
    broker, bridge, device_client, claim_identity, template
):
    template.enabled = False
    provisioning.save_template(template)
    factory = device_client(claim_identity, port=broker.claim_port, client_id="line-2")
    factory.subscribe(CSR + "/+")
    factory.publish(CSR, orjson.dumps({"certificateSigningRequest": make_csr("thermo-0099")[1]}))
    factory.expect_nothing(timeout=1.0)
    assert not DeviceCredential.objects.filter(common_name="thermo-0099").exists()


# --- two templates, two claim certificates: neither sees nor uses the other's claims ---------


@pytest.fixture
def two_templates(broker, settings):
    settings.CLAIM_CREATE_KEYS = True
    made = [
        provisioning.save_template(
            ProvisioningTemplate(name=name, device_type="meter", allow_create_keys=True)
        )
        for name in ("plant-a", "plant-b")
    ]
    yield {
        each.name: write_identity(
            broker.dir / "clients",
            f"claim.{each.name}",
            *pem_pair(provisioning.issue_claim_certificate(each, actor="test")),
        )
        for each in made
    }
    for each in made:
        provisioning.delete_template(each)


def pem_pair(claim) -> tuple[str, str]:
    return claim.key_pem, claim.cert_pem


@pytest.mark.parametrize(
    ("request_topic", "body"),
    [
        (CSR, lambda: {"certificateSigningRequest": make_csr("meter-0007")[1]}),
        ("$aws/certificates/create/json", dict),
    ],
    ids=["create-from-csr", "create-keys"],
)
def test_another_templates_claim_certificate_neither_sees_the_reply_nor_can_register(
    broker, bridge, device_client, two_templates, request_topic, body
):
    victim = device_client(two_templates["plant-b"], port=broker.claim_port, client_id="b-1")
    thief = device_client(two_templates["plant-a"], port=broker.claim_port, client_id="a-1")
    for client in (victim, thief):
        client.subscribe("$aws/certificates/#")
        client.subscribe("$aws/provisioning-templates/+/provision/json/+")

    outcome, created = request(victim, request_topic, body())
    assert outcome == "accepted", created
    thief.expect_nothing(timeout=0.7)

    # Even holding the token (say it leaked), plant-a's certificate cannot register with it.
    token = {"certificateOwnershipToken": created["certificateOwnershipToken"]}
    outcome, error = request(thief, "$aws/provisioning-templates/plant-a/provision/json", token)
    assert (outcome, error["errorCode"]) == ("rejected", "InvalidCertificateOwnershipToken")
    victim.expect_nothing(timeout=0.3)
    assert not Device.objects.exists()

    outcome, registered = request(
        victim, "$aws/provisioning-templates/plant-b/provision/json", token
    )
    assert outcome == "accepted", registered
    assert Device.objects.get(device_id=registered["thingName"]).device_type == "meter"
