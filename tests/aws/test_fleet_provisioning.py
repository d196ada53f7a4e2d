"""AWS's own fleet provisioning beside the portal, against moto: devices AWS enrolled (its
certificates, its provisioning template's policy) are imported as devices on the AWS gateway with
their certificates recorded as AWS's, revoked on AWS and never on the portal's CRL, and
`aws_setup` leaves the template's policy alone.

moto has no provisioning templates (CreateProvisioningTemplate, DescribeProvisioningTemplate,
ListProvisioningTemplates) and does not serve RegisterThing (a device-side MQTT API). The tests
leave AWS as RegisterThing does: a thing, a certificate AWS issued (CreateKeysAndCertificate),
active, attached to the thing and to the template's policy; the template itself, where aws_setup
reads it, is AWS's documented answer, recorded.
"""

import io

import orjson
import pytest
from cryptography import x509
from django.core.management import call_command
from django.core.management.base import CommandError

from aws_gateway import client, importer, registry
from aws_gateway.choices import CertificateIssuer, SyncState
from aws_gateway.models import FleetImport, RegisteredCertificate, ThingSync
from devices import credentials, pki, revocation, services
from devices.choices import CredentialStatus, DeviceStatus
from devices.models import Device, DeviceCredential
from tests.aws.helpers import (
    EVENTS_OFF,
    EVENTS_ON,
    ROLE,
    Injection,
    calls_to,
    injected,
    response,
    setup_output,
)

pytestmark = pytest.mark.django_db

ARN = "arn:aws:iot:eu-west-1:123456789012:"
TEMPLATE_POLICY = "team-provisioned-devices"
# The team's own policy, which its provisioning template attaches to the certificates it issues.
TEMPLATE_POLICY_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"{ARN}client/${{iot:Connection.Thing.ThingName}}",
        },
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "*"},
    ],
}

TEMPLATE = "team-fleet-provisioning"
# ListProvisioningTemplates and DescribeProvisioningTemplate as AWS answers them (AWS IoT API
# reference; the body is the fleet provisioning guide's example template).
LISTED_TEMPLATES = {
    "templates": [
        {
            "templateArn": f"{ARN}provisioningtemplate/{TEMPLATE}",
            "templateName": TEMPLATE,
            "creationDate": 1_765_000_000,
            "lastModifiedDate": 1_765_000_000,
            "enabled": True,
            "type": "FLEET_PROVISIONING",
        }
    ]
}
TEMPLATE_BODY = {
    "Parameters": {
        "SerialNumber": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "Active",
            },
        },
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": TEMPLATE_POLICY}},
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {"ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]}},
        },
    },
}
DESCRIBED_TEMPLATE = {
    **LISTED_TEMPLATES["templates"][0],
    "defaultVersionId": 1,
    "templateBody": orjson.dumps(TEMPLATE_BODY).decode(),
    "provisioningRoleArn": "arn:aws:iam::123456789012:role/fleet-provisioning",
}


def template_policy() -> None:
    client.client("iot").create_policy(
        policyName=TEMPLATE_POLICY, policyDocument=orjson.dumps(TEMPLATE_POLICY_DOCUMENT).decode()
    )


def provisioned_by_aws(thing: str) -> dict:
    """A device as AWS's fleet provisioning leaves it; CreateKeysAndCertificate's answer."""
    iot = client.client("iot")
    iot.create_thing(thingName=thing)
    created = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=thing, principal=created["certificateArn"])
    iot.attach_policy(policyName=TEMPLATE_POLICY, target=created["certificateArn"])
    return created


def imported(thing: str) -> Device:
    job = FleetImport.objects.create(created_by="ops", with_shadows=False)
    importer.run(job.pk)
    return Device.objects.get(device_id=thing)


def policies_of(certificate_arn: str) -> list[str]:
    answer = client.client("iot").list_attached_policies(target=certificate_arn)
    return [policy["policyName"] for policy in answer["policies"]]


def aws_status(certificate_id: str) -> str:
    described = client.client("iot").describe_certificate(certificateId=certificate_id)
    return described["certificateDescription"]["status"]


def crl_serials() -> set[int]:
    crl = x509.load_pem_x509_crl(revocation.build_current_crl())
    return {entry.serial_number for entry in crl}


def test_aws_setup_leaves_provisioning_templates_and_their_policy_alone(
    aws, identity_env, settings
):
    settings.AWS_RULE_ROLE_ARN = ROLE
    template_policy()
    created = provisioned_by_aws("sensor-1")
    iot = client.client("iot")
    versions = iot.list_policy_versions(policyName=TEMPLATE_POLICY)["policyVersions"]

    with calls_to("iot") as calls:
        setup_output(EVENTS_OFF)
        setup_output(EVENTS_ON)

    writes = ("Create", "Update", "Delete")
    assert not [n for n, _ in calls if "ProvisioningTemplate" in n and n.startswith(writes)]
    assert not [name for name, params in calls if TEMPLATE_POLICY in params.values()]
    policy = iot.get_policy(policyName=TEMPLATE_POLICY)
    assert orjson.loads(policy["policyDocument"]) == TEMPLATE_POLICY_DOCUMENT
    assert iot.list_policy_versions(policyName=TEMPLATE_POLICY)["policyVersions"] == versions
    assert policies_of(created["certificateArn"]) == [TEMPLATE_POLICY]
    assert aws_status(created["certificateId"]) == "ACTIVE"


def test_aws_setup_does_not_change_a_policy_a_provisioning_template_attaches(
    aws, identity_env, settings
):
    settings.AWS_RULE_ROLE_ARN = ROLE
    settings.AWS_POLICY_NAME = TEMPLATE_POLICY  # the portal's policy named as the team's is
    template_policy()
    out = io.StringIO()
    listed = Injection([], forever=lambda: response(200, LISTED_TEMPLATES))
    described = Injection([], forever=lambda: response(200, DESCRIBED_TEMPLATE))
    events = Injection([], forever=lambda: response(200, EVENTS_ON))

    with (
        injected("iot", "ListProvisioningTemplates", listed),
        injected("iot", "DescribeProvisioningTemplate", described),
        injected("iot", "DescribeEventConfigurations", events),
        pytest.raises(CommandError, match="not done"),
    ):
        call_command("aws_setup", stdout=out)

    assert f"IoT policy {TEMPLATE_POLICY}: not done" in out.getvalue()
    assert TEMPLATE in out.getvalue()
    iot = client.client("iot")
    policy = iot.get_policy(policyName=TEMPLATE_POLICY)
    assert orjson.loads(policy["policyDocument"]) == TEMPLATE_POLICY_DOCUMENT
    assert len(iot.list_policy_versions(policyName=TEMPLATE_POLICY)["policyVersions"]) == 1


def test_a_device_aws_provisioned_is_imported_with_its_certificate_recorded_as_aws_issued(
    aws, identity_env, admin_client
):
    template_policy()
    created = provisioned_by_aws("sensor-2")

    device = imported("sensor-2")

    assert (device.gateway, device.status) == ("aws", DeviceStatus.ACTIVE)
    credential = device.credentials.get()
    assert credential.status == CredentialStatus.ACTIVE
    assert credential.credential_value == created["certificatePem"]
    known = RegisteredCertificate.objects.get(credential=credential)
    assert (known.certificate_id, known.issuer) == (created["certificateId"], CertificateIssuer.AWS)
    page = admin_client.get(f"/admin/devices/device/{device.pk}/change/").content.decode()
    assert "issued by AWS" in page


def test_a_sync_of_an_aws_provisioned_device_does_not_need_the_fleets_policy(aws, identity_env):
    # No aws_setup: the portal's policy does not exist; the template's policy is the device's.
    template_policy()
    created = provisioned_by_aws("sensor-3")
    device = imported("sensor-3")

    services.update_device(device, {"serial_number": "S-3"}, actor="ops")

    assert registry.sync(device.pk) == SyncState.SYNCED
    assert policies_of(created["certificateArn"]) == [TEMPLATE_POLICY]
    principals = client.client("iot").list_thing_principals(thingName="sensor-3")["principals"]
    assert principals == [created["certificateArn"]]


def test_revoking_an_aws_issued_certificate_revokes_it_on_aws_and_keeps_it_off_the_crl(
    aws, identity_env
):
    template_policy()
    created = provisioned_by_aws("sensor-4")
    # Beside it, a certificate the portal's CA signed, on AWS too: the CRL's business.
    _key, ours = pki.generate_key_and_certificate(credentials.load_authority(), "sensor-4", 30)
    iot = client.client("iot")
    registered = iot.register_certificate_without_ca(certificatePem=ours.pem, status="ACTIVE")
    iot.attach_thing_principal(thingName="sensor-4", principal=registered["certificateArn"])
    device = imported("sensor-4")
    theirs = DeviceCredential.objects.get(fingerprint=created["certificateId"])

    credentials.revoke_credentials(device.credentials.all(), actor="ops", reason="keyCompromise")
    registry.sync(device.pk)

    assert aws_status(created["certificateId"]) == "REVOKED"
    assert RegisteredCertificate.objects.get(credential=theirs).aws_status == "REVOKED"
    assert int(theirs.serial_number, 16) not in crl_serials()
    assert ours.serial_number in crl_serials()


def test_a_thing_deleted_on_aws_gets_its_aws_issued_certificate_back(aws, identity_env):
    template_policy()
    created = provisioned_by_aws("sensor-5")
    device = imported("sensor-5")
    iot = client.client("iot")
    iot.detach_thing_principal(thingName="sensor-5", principal=created["certificateArn"])
    iot.delete_thing(thingName="sensor-5")

    services.update_device(device, {"serial_number": "S-5"}, actor="ops")

    assert registry.sync(device.pk) == SyncState.SYNCED
    assert "recreated" in ThingSync.objects.get(device=device).note
    principals = iot.list_thing_principals(thingName="sensor-5")["principals"]
    assert principals == [created["certificateArn"]]
    known = RegisteredCertificate.objects.get(certificate_id=created["certificateId"])
    assert known.issuer == CertificateIssuer.AWS
    assert policies_of(created["certificateArn"]) == [TEMPLATE_POLICY]


def test_aws_setup_reads_a_template_that_names_its_policy_by_parameter(aws, identity_env, settings):
    # A template may take the policy's name from a parameter ({"Ref": …}) or leave a resource's
    # properties out; aws_setup cannot clash with such a name and goes on (it used to crash).
    settings.AWS_RULE_ROLE_ARN = ROLE
    settings.AWS_POLICY_NAME = TEMPLATE_POLICY
    template_policy()
    body = {
        "Parameters": {"PolicyName": {"Type": "String"}},
        "Resources": {
            "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": {"Ref": "P"}}},
            "other": {"Type": "AWS::IoT::Policy", "Properties": None},
        },
    }
    described = {**DESCRIBED_TEMPLATE, "templateBody": orjson.dumps(body).decode()}
    out = io.StringIO()
    with (
        injected(
            "iot",
            "ListProvisioningTemplates",
            Injection([], forever=lambda: response(200, LISTED_TEMPLATES)),
        ),
        injected(
            "iot",
            "DescribeProvisioningTemplate",
            Injection([], forever=lambda: response(200, described)),
        ),
        injected(
            "iot",
            "DescribeEventConfigurations",
            Injection([], forever=lambda: response(200, EVENTS_ON)),
        ),
    ):
        call_command("aws_setup", stdout=out)

    assert f"IoT policy {TEMPLATE_POLICY}: not done" not in out.getvalue()
