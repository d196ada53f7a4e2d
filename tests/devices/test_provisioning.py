"""Fleet provisioning by claim, at the service and handler level (device-protocol.md §3)."""

import http.server
import json
import threading
import time
from datetime import timedelta

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from django.utils import timezone

from devices import provisioning
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.handlers import provisioning as handlers
from devices.models import Device, DeviceCredential, ProvisioningTemplate
from devices.provisioning import (
    AccessDenied,
    InvalidCertificateOwnershipToken,
    InvalidPayload,
    ResourceNotFound,
)
from fleetportal import topics
from fleetportal.bridge.router import InboundMessage
from fleetportal.models import OutboxMessage
from tests.conftest import make_device, make_group
from tests.devices.claim_helpers import (
    held_serials,
    make_csr,
    make_template,
)
from tests.devices.test_pki import RSA_512_CSR

pytestmark = pytest.mark.usefixtures("identity_env")

HOLD = "certificateHold"
# The claim client every request here comes from (replies go to it alone).
CLAIMANT = topics.Claimant.of("factory-line-1", "factory")


def claim(device_id: str = "sensor-0001", claimant: topics.Claimant = CLAIMANT):
    key, csr = make_csr(device_id)
    return key, provisioning.create_from_csr(csr, claimant)


def serial_of(pem: str) -> int:
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def replies(topic: str, claimant: topics.Claimant = CLAIMANT) -> list[dict]:
    """The replies on `topic` queued for the claimant (each delivered to it alone)."""
    sent = OutboxMessage.objects.filter(topic=claimant.reply_topic(topic))
    return [orjson.loads(m.payload) for m in sent]


def refused(
    error_class, function, *args, claimant: topics.Claimant = CLAIMANT
) -> provisioning.ProvisioningError:
    with pytest.raises(error_class) as excinfo:
        function(*args, claimant=claimant)
    return excinfo.value


# --- create-from-csr --------------------------------------------------------------------------


def test_create_from_csr_issues_a_pending_certificate_for_the_csr_common_name():
    key, result = claim("sensor-0001")
    certificate = x509.load_pem_x509_certificate(result.certificate_pem.encode())
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "sensor-0001"
    )
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    credential = DeviceCredential.objects.get(fingerprint=result.certificate_id)
    assert credential.status == CredentialStatus.PENDING_ACTIVATION
    assert credential.device is None
    assert not Device.objects.filter(device_id="sensor-0001").exists()


def test_create_from_csr_replies_accepted_with_the_certificate_and_token():
    _, result = claim()
    [reply] = replies("$aws/certificates/create-from-csr/json/accepted")
    assert reply == {
        "certificateId": result.certificate_id,
        "certificatePem": result.certificate_pem,
        "certificateOwnershipToken": result.ownership_token,
    }
    assert len(result.certificate_id) == 64


def test_pending_certificate_is_held_in_the_crl_before_the_reply_commits():
    _, result = claim()
    assert held_serials()[serial_of(result.certificate_pem)] == HOLD


def test_only_a_hash_of_the_ownership_token_is_stored():
    _, result = claim()
    credential = DeviceCredential.objects.get(fingerprint=result.certificate_id)
    assert result.ownership_token not in str(
        DeviceCredential.objects.filter(pk=credential.pk).values().get()
    )
    assert credential.ownership_token_hash == provisioning.token_hash(result.ownership_token)


def test_ownership_token_expires_after_one_hour():
    before = timezone.now()
    _, result = claim()
    expires = DeviceCredential.objects.get(fingerprint=result.certificate_id)
    assert expires.ownership_token_expires_at - before == pytest.approx(
        timedelta(hours=1), abs=timedelta(seconds=5)
    )


@pytest.mark.parametrize(
    ("csr", "message"),
    [
        (make_csr(None)[1], "exactly one common name"),
        (make_csr("bad/name")[1], "not a valid device ID"),
        (make_csr("x" * 65)[1], "at most 64"),
        ("not a csr", "not a PEM-encoded"),
        (RSA_512_CSR, "512 bits"),
        (12, "must be a PEM string"),
    ],
)
@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")
def test_create_from_csr_refuses_bad_csrs(csr, message):
    error = refused(InvalidPayload, provisioning.create_from_csr, csr)
    assert message in error.message
    assert error.document()["statusCode"] == 400
    assert not DeviceCredential.objects.exists()


def test_create_from_csr_refuses_the_id_of_a_registered_device():
    make_device("sensor-0001")
    error = refused(InvalidPayload, provisioning.create_from_csr, make_csr("sensor-0001")[1])
    assert "already registered" in error.message


def test_create_from_csr_refuses_an_id_another_certificate_is_pending_for():
    claim("sensor-0001")
    error = refused(InvalidPayload, provisioning.create_from_csr, make_csr("sensor-0001")[1])
    assert "already waiting" in error.message
    assert DeviceCredential.objects.count() == 1


def test_create_from_csr_accepts_the_id_again_once_the_earlier_token_expired():
    _, first = claim("sensor-0001")
    DeviceCredential.objects.filter(fingerprint=first.certificate_id).update(
        ownership_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    _, second = claim("sensor-0001")
    assert second.certificate_id != first.certificate_id


# --- create (portal-generated keys) -----------------------------------------------------------


def test_create_keys_is_refused_unless_the_operator_enabled_it():
    error = refused(AccessDenied, provisioning.create_keys)
    assert error.document()["errorCode"] == "AccessDenied"
    assert not DeviceCredential.objects.exists()


def test_create_keys_returns_a_key_matching_a_pending_certificate(settings):
    settings.CLAIM_CREATE_KEYS = True
    result = provisioning.create_keys(CLAIMANT)
    key = serialization.load_pem_private_key(result.private_key.encode(), None)
    certificate = x509.load_pem_x509_certificate(result.certificate_pem.encode())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    [reply] = replies("$aws/certificates/create/json/accepted")
    assert set(reply) == {
        "certificateId",
        "certificatePem",
        "privateKey",
        "certificateOwnershipToken",
    }
    credential = DeviceCredential.objects.get(fingerprint=result.certificate_id)
    assert credential.status == CredentialStatus.PENDING_ACTIVATION
    assert result.private_key not in credential.credential_value


# --- RegisterThing ----------------------------------------------------------------------------


def test_register_thing_registers_the_device_the_template_describes(
    django_capture_on_commit_callbacks,
):
    group = make_group("plant-7")
    make_template(
        "factory",
        device_type="thermostat",
        group=group,
        parameters={"SerialNumber": {"required": True}, "Site": {"default": "berlin"}},
        device_id_template="sensor-{SerialNumber}",
        metadata_template={"site": "{Site}", "batch": "b-{SerialNumber}"},
        device_configuration={"telemetryInterval": "60"},
    )
    _, result = claim("sensor-0001")
    with django_capture_on_commit_callbacks(execute=True):
        reply = provisioning.register_thing(
            "factory", result.ownership_token, {"SerialNumber": "0001"}, CLAIMANT
        )
    assert reply == {"thingName": "sensor-0001", "deviceConfiguration": {"telemetryInterval": "60"}}
    device = Device.objects.get(device_id="sensor-0001")
    assert (device.device_type, device.group, device.serial_number) == ("thermostat", group, "0001")
    assert device.metadata == {"site": "berlin", "batch": "b-0001"}
    assert device.status == DeviceStatus.PROVISIONING
    assert replies("$aws/provisioning-templates/factory/provision/json/accepted") == [reply]


def test_register_thing_activates_the_certificate_and_releases_its_hold(
    django_capture_on_commit_callbacks,
):
    make_template()
    _, result = claim("sensor-0001")
    with django_capture_on_commit_callbacks(execute=True):
        provisioning.register_thing("factory", result.ownership_token, {}, CLAIMANT)
    credential = DeviceCredential.objects.get(fingerprint=result.certificate_id)
    assert credential.status == CredentialStatus.ACTIVE
    assert credential.device.device_id == "sensor-0001"
    assert serial_of(result.certificate_pem) not in held_serials()


def test_register_thing_records_the_device_history():
    make_template()
    _, result = claim("sensor-0001")
    provisioning.register_thing("factory", result.ownership_token, {}, CLAIMANT)
    events = Device.objects.get(device_id="sensor-0001").events.order_by("pk")
    assert [(e.event_type, e.actor) for e in events] == [
        (EventType.REGISTERED, "device"),
        (EventType.CREDENTIAL_ISSUED, "device"),
        (EventType.STATUS_CHANGED, "device"),
        (EventType.PROVISIONED_BY_CLAIM, "device"),
    ]
    assert events.last().event_data["certificateId"] == result.certificate_id


def test_template_may_make_provisioned_devices_active_at_once():
    make_template(initial_status=DeviceStatus.ACTIVE)
    _, result = claim("sensor-0001")
    provisioning.register_thing("factory", result.ownership_token, {}, CLAIMANT)
    assert Device.objects.get(device_id="sensor-0001").status == DeviceStatus.ACTIVE


def test_ownership_token_is_single_use():
    make_template()
    _, result = claim("sensor-0001")
    provisioning.register_thing("factory", result.ownership_token, {}, CLAIMANT)
    error = refused(
        InvalidCertificateOwnershipToken,
        provisioning.register_thing,
        "factory",
        result.ownership_token,
        {},
    )
    assert "already been used" in error.message


def test_expired_ownership_token_is_refused_and_registers_nothing():
    make_template()
    _, result = claim("sensor-0001")
    DeviceCredential.objects.update(
        ownership_token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    error = refused(
        InvalidCertificateOwnershipToken,
        provisioning.register_thing,
        "factory",
        result.ownership_token,
        {},
    )
    assert "expired" in error.message
    assert not Device.objects.exists()


@pytest.mark.parametrize("token", ["", None, "made-up-token", 42])
def test_empty_or_unknown_ownership_token_is_refused(token):
    make_template()
    claim("sensor-0001")
    error = refused(
        InvalidCertificateOwnershipToken, provisioning.register_thing, "factory", token, {}
    )
    assert error.document()["errorCode"] == "InvalidCertificateOwnershipToken"


def test_unknown_or_disabled_template_is_resource_not_found_and_keeps_the_token():
    make_template("disabled", enabled=False)
    make_template("factory")
    _, result = claim("sensor-0001")
    for name in ("nope", "disabled"):
        error = refused(
            ResourceNotFound,
            provisioning.register_thing,
            name,
            result.ownership_token,
            {},
            claimant=topics.Claimant.of("factory-line-1", name),
        )
        assert error.document()["statusCode"] == 404
    assert not Device.objects.exists()
    provisioning.register_thing("factory", result.ownership_token, {}, CLAIMANT)
    assert Device.objects.filter(device_id="sensor-0001").exists()


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, "Missing required parameters: SerialNumber"),
        ({"SerialNumber": "0001", "Colour": "red"}, "Unknown parameters Colour"),
        ({"SerialNumber": 1}, "values are strings"),
        (["SerialNumber"], "values are strings"),
        ({"SerialNumber": "01"}, "does not match the pattern"),
        ({"SerialNumber": "0" * 1025}, "longer than 1024"),
        ({"SerialNumber": "0002"}, "issued for 'sensor-0001'"),
    ],
)
def test_parameters_that_fail_the_template_are_refused_and_leave_nothing(parameters, message):
    make_template(
        parameters={"SerialNumber": {"required": True, "pattern": "[0-9]{4,}"}},
        device_id_template="sensor-{SerialNumber}",
    )
    _, result = claim("sensor-0001")
    error = refused(
        InvalidPayload, provisioning.register_thing, "factory", result.ownership_token, parameters
    )
    assert message in error.message
    assert not Device.objects.exists()
    credential = DeviceCredential.objects.get()
    assert credential.status == CredentialStatus.PENDING_ACTIVATION
    assert credential.ownership_token_hash == provisioning.token_hash(result.ownership_token)


def test_serial_number_allow_list_refuses_other_serials():
    make_template(
        parameters={"SerialNumber": {"required": True}}, allowed_serial_numbers=["A1", "A2"]
    )
    _, refused_claim = claim("sensor-0001")
    error = refused(
        AccessDenied,
        provisioning.register_thing,
        "factory",
        refused_claim.ownership_token,
        {"SerialNumber": "B7"},
    )
    assert "allow-list" in error.message
    _, allowed_claim = claim("sensor-0002")
    provisioning.register_thing(
        "factory", allowed_claim.ownership_token, {"SerialNumber": "A2"}, CLAIMANT
    )
    assert list(Device.objects.values_list("device_id", "serial_number")) == [("sensor-0002", "A2")]


def test_device_registered_meanwhile_makes_register_thing_fail_cleanly():
    make_template()
    _, result = claim("sensor-0001")
    make_device("sensor-0001", device_type="other")
    error = refused(
        InvalidPayload, provisioning.register_thing, "factory", result.ownership_token, {}
    )
    assert "device_id" in error.message
    assert DeviceCredential.objects.get().status == CredentialStatus.PENDING_ACTIVATION
    assert Device.objects.get().device_type == "other"


# --- the pre-provisioning hook ----------------------------------------------------------------


class Hook:
    """A local HTTP server answering like a pre-provisioning hook."""

    def __init__(self, answer: dict | bytes | None, delay: float = 0.0, status: int = 200):
        self.requests: list[dict] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                hook.requests.append(json.loads(self.rfile.read(length)))
                time.sleep(delay)
                body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", hook.redirect_to)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(settings):
    # The test hooks listen on 127.0.0.1 over plain http: allowed only because the test says so.
    settings.PROVISIONING_HOOK_HOSTS = ["127.0.0.1"]
    settings.PROVISIONING_HOOK_ALLOW_HTTP = True
    hooks = []

    def start(answer, delay=0.0, status=200):
        hooks.append(Hook(answer, delay, status))
        return hooks[-1]

    yield start
    for server in hooks:
        server.close()


def hooked_template(url: str) -> ProvisioningTemplate:
    return make_template(
        parameters={"SerialNumber": {"required": True}, "Site": {"default": ""}},
        metadata_template={"site": "{Site}"},
        pre_provisioning_hook_url=url,
    )


def test_hook_receives_the_aws_input_and_may_override_parameters(hook):
    server = hook({"allowProvisioning": True, "parameterOverrides": {"Site": "hamburg"}})
    hooked_template(server.url)
    _, result = claim("sensor-0001")
    provisioning.register_thing("factory", result.ownership_token, {"SerialNumber": "1"}, CLAIMANT)
    [request] = server.requests
    assert request["certificateId"] == result.certificate_id
    assert request["certificatePem"] == result.certificate_pem
    assert request["parameters"] == {"SerialNumber": "1", "Site": ""}
    assert request["clientId"] == "factory-line-1"  # the MQTT client id that asked
    assert {"claimCertificateId", "templateArn"} <= set(request)
    assert Device.objects.get().metadata == {"site": "hamburg"}


@pytest.mark.parametrize(
    "answer",
    [
        {"allowProvisioning": False},
        {"allowProvisioning": "yes"},
        {"allowProvisioning": True, "parameterOverrides": {"Unknown": "x"}},
        {"allowProvisioning": True, "parameterOverrides": {"Site": 5}},
        b"<html>not json</html>",
    ],
)
def test_hook_that_denies_or_answers_badly_denies_provisioning(hook, answer):
    hooked_template(hook(answer).url)
    _, result = claim("sensor-0001")
    error = refused(
        AccessDenied,
        provisioning.register_thing,
        "factory",
        result.ownership_token,
        {"SerialNumber": "1"},
    )
    assert error.document()["statusCode"] == 403
    assert not Device.objects.exists()


def test_hook_that_does_not_answer_in_time_denies_provisioning(hook, monkeypatch):
    monkeypatch.setattr(provisioning.hook, "HOOK_TIMEOUT_SECONDS", 0.3)
    hooked_template(hook({"allowProvisioning": True}, delay=1.0).url)
    _, result = claim("sensor-0001")
    started = time.monotonic()
    refused(
        AccessDenied,
        provisioning.register_thing,
        "factory",
        result.ownership_token,
        {"SerialNumber": "1"},
    )
    assert time.monotonic() - started < 0.9
    assert not Device.objects.exists()


def test_unreachable_hook_denies_provisioning(hook):
    server = hook({"allowProvisioning": True})
    url = server.url
    server.close()
    hooked_template(url)
    _, result = claim("sensor-0001")
    refused(
        AccessDenied,
        provisioning.register_thing,
        "factory",
        result.ownership_token,
        {"SerialNumber": "1"},
    )


# --- expiry -----------------------------------------------------------------------------------


def test_expire_pending_revokes_certificates_whose_token_expired(
    django_capture_on_commit_callbacks,
):
    _, stale = claim("sensor-0001")
    _, fresh = claim("sensor-0002")
    DeviceCredential.objects.filter(fingerprint=stale.certificate_id).update(
        ownership_token_expires_at=timezone.now() - timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert provisioning.expire_pending() == 1
    revoked = DeviceCredential.objects.get(fingerprint=stale.certificate_id)
    assert (revoked.status, revoked.revoked, revoked.revocation_reason) == (
        CredentialStatus.REVOKED,
        True,
        "ownership token expired",
    )
    assert DeviceCredential.objects.get(fingerprint=fresh.certificate_id).status == (
        CredentialStatus.PENDING_ACTIVATION
    )
    held = held_serials()
    assert serial_of(stale.certificate_pem) in held
    assert held[serial_of(fresh.certificate_pem)] == HOLD


# --- MQTT handlers ----------------------------------------------------------------------------


def inbound(topic: str, payload: bytes) -> InboundMessage:
    """A request on `topic` as the claim broker hands it to the portal (tagged with CLAIMANT)."""
    tagged = topics.claim_request("factory-line-1", CLAIMANT.user, topic)
    return InboundMessage(topic=tagged, payload=payload, route=topics.parse(tagged))


def handle(topic: str, payload) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    message = inbound(topic, body)
    {
        "create_from_csr": handlers.on_create_from_csr,
        "create_keys": handlers.on_create_keys,
        "provision": handlers.on_provision,
    }[message.route.kind](message)


CSR_TOPIC = "$aws/certificates/create-from-csr/json"
PROVISION_TOPIC = "$aws/provisioning-templates/factory/provision/json"


def test_handlers_serve_the_claim_flow_end_to_end():
    make_template()
    handle(CSR_TOPIC, {"certificateSigningRequest": make_csr("sensor-0001")[1]})
    [accepted] = replies(CSR_TOPIC + "/accepted")
    handle(PROVISION_TOPIC, {"certificateOwnershipToken": accepted["certificateOwnershipToken"]})
    assert replies(PROVISION_TOPIC + "/accepted") == [
        {"thingName": "sensor-0001", "deviceConfiguration": {}}
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "must be a PEM string"),
        (b'{"certificateSigningRequest": 5}', "must be a PEM string"),
    ],
)
def test_malformed_requests_are_rejected_with_invalid_payload(payload, message):
    handle(CSR_TOPIC, payload)
    [rejected] = replies(CSR_TOPIC + "/rejected")
    assert rejected["statusCode"] == 400
    assert rejected["errorCode"] == "InvalidPayload"
    assert message in rejected["errorMessage"]
    assert not replies(CSR_TOPIC + "/accepted")


def test_rejected_provision_rolls_back_its_work_but_sends_the_rejection():
    make_template(parameters={"Site": {"required": True}})
    _, result = claim("sensor-0001")
    handle(PROVISION_TOPIC, {"certificateOwnershipToken": result.ownership_token})
    assert replies(PROVISION_TOPIC + "/rejected") == [
        {
            "statusCode": 400,
            "errorCode": "InvalidPayload",
            "errorMessage": "Missing required parameters: Site.",
        }
    ]
    assert not Device.objects.exists()
    assert not replies(PROVISION_TOPIC + "/accepted")


def test_missing_ownership_token_gets_the_aws_message():
    make_template()
    handle(PROVISION_TOPIC, {"parameters": {}})
    [rejected] = replies(PROVISION_TOPIC + "/rejected")
    assert rejected == {
        "statusCode": 400,
        "errorCode": "InvalidCertificateOwnershipToken",
        "errorMessage": "Certificate ownership token cannot be empty.",
    }


def test_create_keys_handler_accepts_an_empty_body(settings):
    settings.CLAIM_CREATE_KEYS = True
    handle("$aws/certificates/create/json", b"")
    [accepted] = replies("$aws/certificates/create/json/accepted")
    assert accepted["privateKey"].startswith("-----BEGIN PRIVATE KEY-----")


def test_unexpected_failure_is_answered_with_internal_failure(settings):
    settings.FLEETPORTAL_CA_DIR = settings.BROKER_DIR / "no-ca-here"
    handle(CSR_TOPIC, {"certificateSigningRequest": make_csr("sensor-0001")[1]})
    [rejected] = replies(CSR_TOPIC + "/rejected")
    assert (rejected["statusCode"], rejected["errorCode"]) == (500, "InternalFailure")
    assert not DeviceCredential.objects.exists()


def test_handlers_are_registered_for_the_provisioning_topics():
    from fleetportal.bridge import router

    assert {
        "fleetportal/claim/+/+/$aws/certificates/create-from-csr/json",
        "fleetportal/claim/+/+/$aws/certificates/create/json",
        "fleetportal/claim/+/+/$aws/provisioning-templates/+/provision/json",
    } <= set(router.subscriptions())


def test_only_requests_tagged_by_the_claim_broker_are_served():
    """A claim request reaches the portal only through the claim broker, which names its sender."""
    assert topics.parse(CSR_TOPIC) is None
    assert topics.parse(PROVISION_TOPIC) is None
    for untagged in (
        f"fleetportal/claim/zz/claim.factory/{CSR_TOPIC}",  # not hex
        f"fleetportal/claim/61/factory/{CSR_TOPIC}",  # not a claim user
        f"fleetportal/claim/61/claim./{CSR_TOPIC}",
        "fleetportal/claim/61/claim.factory/$aws/things/x/shadow/update",
    ):
        assert topics.parse(untagged) is None, untagged


# --- tokens are bound to the template whose claim certificate asked ------------------------


def test_a_token_cannot_register_through_another_template():
    make_template("factory")
    make_template("other")
    _, result = claim("sensor-0001")
    other = topics.Claimant.of("other-line", "other")
    error = refused(
        InvalidCertificateOwnershipToken,
        provisioning.register_thing,
        "other",
        result.ownership_token,
        {},
        claimant=other,
    )
    assert "another template" in error.document()["errorMessage"]
    assert not Device.objects.exists()
    provisioning.register_thing("factory", result.ownership_token, {}, CLAIMANT)
    assert Device.objects.filter(device_id="sensor-0001").exists()


def test_a_claim_certificate_cannot_provision_through_another_template():
    make_template("factory")
    make_template("other")
    _, result = claim("sensor-0001")
    error = refused(AccessDenied, provisioning.register_thing, "other", result.ownership_token, {})
    assert error.document()["statusCode"] == 403
    assert not Device.objects.exists()


def test_replies_go_to_the_client_that_asked_alone():
    make_template("factory")
    someone_else = topics.Claimant.of("factory-line-2", "factory")
    claim("sensor-0001")
    assert len(replies("$aws/certificates/create-from-csr/json/accepted")) == 1
    assert replies("$aws/certificates/create-from-csr/json/accepted", someone_else) == []
    assert not OutboxMessage.objects.filter(
        topic="$aws/certificates/create-from-csr/json/accepted"
    ).exists()


def register_with_hook() -> AccessDenied:
    _, result = claim("sensor-0001")
    return refused(
        AccessDenied,
        provisioning.register_thing,
        "factory",
        result.ownership_token,
        {"SerialNumber": "1"},
    )


def test_a_hook_redirect_is_not_followed(hook):
    target = hook({"allowProvisioning": True})
    redirecting = hook(b"", status=307)
    redirecting.redirect_to = target.url
    hooked_template(redirecting.url)

    register_with_hook()

    assert target.requests == [] and not Device.objects.exists()


def test_a_hook_answer_over_64_kb_denies_provisioning(hook):
    hooked_template(hook(b'{"allowProvisioning": true, "x": "' + b"a" * 70_000 + b'"}').url)

    register_with_hook()

    assert not Device.objects.exists()


def test_a_hook_host_outside_the_allow_list_is_never_called(hook, settings):
    server = hook({"allowProvisioning": True})
    hooked_template(server.url)
    settings.PROVISIONING_HOOK_HOSTS = ["hooks.example.com"]

    register_with_hook()

    assert server.requests == [] and not Device.objects.exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/check", "https"),
        ("https://169.254.169.254/latest/meta-data", "not in FLEETPORTAL_PROVISIONING_HOOK_HOSTS"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
    ],
)
def test_a_template_hook_the_portal_may_not_call_is_refused_at_save(
    admin_api, settings, url, problem
):
    settings.PROVISIONING_HOOK_HOSTS = ["hooks.example.com"]
    settings.PROVISIONING_HOOK_ALLOW_HTTP = False

    response = admin_api.post(
        "/api/v1/provisioning-templates/",
        {"name": "hooked", "device_type": "sensor", "pre_provisioning_hook_url": url},
        format="json",
    )

    assert response.status_code == 400
    assert problem in str(response.json()["pre_provisioning_hook_url"])
    assert not ProvisioningTemplate.objects.filter(name="hooked").exists()
