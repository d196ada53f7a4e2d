"""Identity on AWS against moto: the CA registered, device certificates registered, attached and
revoked, the fleet policy's confinement, and `manage.py aws_setup` (idempotent)."""

import orjson
import pytest
from django.core.management.base import CommandError

from aws_gateway import client, identity, registry, rule
from aws_gateway.models import RegisteredCertificate
from devices import credentials, revocation
from tests.aws.helpers import (
    EVENTS_OFF,
    EVENTS_ON,
    ROLE,
    aws_device,
    setup_output,
)
from tests.devices.credential_helpers import csr_pem

pytestmark = pytest.mark.django_db


@pytest.fixture
def aws_identity(aws, identity_env, settings):
    settings.AWS_RULE_ROLE_ARN = ROLE
    iot = client.client("iot")
    iot.register_ca_certificate(
        caCertificate=identity.ca_pem(), verificationCertificate="-", setAsActive=True
    )
    where = identity.Account("aws", "eu-west-1", "123456789012")
    identity.ensure_policy(iot, identity.policy_document(where))
    return aws


def test_an_issued_certificate_is_registered_active_and_attached_to_thing_and_policy(
    aws_identity,
):
    device = aws_device("meter-1")
    credential, _ = credentials.issue_credential(device, csr_pem=csr_pem("meter-1"), actor="ops")

    registry.sync(device.pk)

    iot = client.client("iot")
    known = RegisteredCertificate.objects.get(credential=credential)
    assert known.certificate_id == credential.fingerprint  # AWS's certificateId is the DER's hash
    described = iot.describe_certificate(certificateId=known.certificate_id)
    assert described["certificateDescription"]["status"] == "ACTIVE"
    assert iot.list_thing_principals(thingName="meter-1")["principals"] == [known.certificate_arn]
    policies = iot.list_attached_policies(target=known.certificate_arn)["policies"]
    assert [p["policyName"] for p in policies] == ["fleetportal-devices"]


def test_revocation_marks_the_certificate_revoked_on_aws_and_updates_the_crl(aws_identity):
    device = aws_device("meter-2")
    credential, _ = credentials.issue_credential(device, csr_pem=csr_pem("meter-2"), actor="ops")
    registry.sync(device.pk)

    credentials.revoke_credential(credential, actor="ops", reason="keyCompromise")
    registry.sync(device.pk)

    described = client.client("iot").describe_certificate(certificateId=credential.fingerprint)
    assert described["certificateDescription"]["status"] == "REVOKED"
    assert RegisteredCertificate.objects.get(credential=credential).aws_status == "REVOKED"
    crl = revocation.build_current_crl()
    from cryptography import x509

    serials = {entry.serial_number for entry in x509.load_pem_x509_crl(crl)}
    assert int(credential.serial_number, 16) in serials


def test_a_certificate_registered_by_a_sync_that_died_is_found_not_refused(aws_identity):
    device = aws_device("meter-3")
    credential, _ = credentials.issue_credential(device, csr_pem=csr_pem("meter-3"), actor="ops")
    identity.register_certificate(client.client("iot"), credential.credential_value)

    registry.sync(device.pk)

    assert RegisteredCertificate.objects.get(credential=credential).aws_status == "ACTIVE"
    principals = client.client("iot").list_thing_principals(thingName="meter-3")["principals"]
    assert len(principals) == 1


def test_the_policy_confines_each_thing_to_its_own_client_id_and_topics():
    where = identity.Account("aws", "eu-west-1", "123456789012")
    statements = identity.policy_document(where)["Statement"]
    by_action = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            by_action[action] = statement

    arn = "arn:aws:iot:eu-west-1:123456789012:"
    me = "${iot:Connection.Thing.ThingName}"
    assert set(by_action) == {
        "iot:Connect",
        "iot:Publish",
        "iot:RetainPublish",
        "iot:Receive",
        "iot:Subscribe",
    }
    assert by_action["iot:Connect"]["Resource"] == f"{arn}client/{me}"
    assert by_action["iot:Connect"]["Condition"] == {
        "Bool": {"iot:Connection.Thing.IsAttached": "true"}
    }
    topics_ = [
        f"{arn}topic/$aws/things/{me}",
        f"{arn}topic/$aws/things/{me}/*",
        f"{arn}topic/devices/{me}",
        f"{arn}topic/devices/{me}/*",
    ]
    for action in ("iot:Publish", "iot:RetainPublish", "iot:Receive"):
        assert by_action[action]["Resource"] == topics_
    assert by_action["iot:Subscribe"]["Resource"] == [
        resource.replace(":topic/", ":topicfilter/") for resource in topics_
    ]


# -- aws_setup ------------------------------------------------------------------------------------


def test_aws_setup_creates_everything_and_a_second_run_changes_nothing(aws, identity_env, settings):
    settings.AWS_RULE_ROLE_ARN = ROLE
    aws_device("meter-4", device_type="meter")

    first = setup_output(EVENTS_OFF)

    assert "CA certificate (the portal's issuing CA): created" in first
    assert "IoT policy fleetportal-devices: created" in first
    assert "thing type meter: created" in first
    assert "SQS queue fleetportal-device-reports: created" in first
    assert "job execution events: updated" in first
    iot = client.client("iot")
    for forward in rule.FORWARDS:
        stored = iot.get_topic_rule(ruleName=forward.rule_name)["rule"]
        assert stored["sql"] == forward.sql
        assert stored["actions"][0]["sqs"]["roleArn"] == ROLE
    ca_id = identity.certificate_id(identity.ca_pem())
    assert (
        iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]["status"]
        == "ACTIVE"
    )
    document = orjson.loads(iot.get_policy(policyName="fleetportal-devices")["policyDocument"])
    assert document["Statement"][0]["Resource"].startswith(
        "arn:aws:iot:eu-west-1:123456789012:client/"
    )

    second = setup_output(EVENTS_ON)

    assert "created" not in second and "updated" not in second
    assert second.rstrip().endswith("Nothing changed: the account was already set up.")


def test_aws_setup_without_the_rules_role_says_so_and_fails(aws, identity_env):
    with pytest.raises(CommandError, match="not done"):
        setup_output(EVENTS_ON)
