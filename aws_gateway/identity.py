"""Identity on AWS IoT Core: the portal's CA registered with AWS (RegisterCACertificate), each
device certificate the portal issues registered and activated (RegisterCertificate), attached to
its thing and to the fleet's IoT policy, and marked REVOKED on AWS when the portal revokes it.

Certificates AWS issued (its own fleet provisioning: CreateKeysAndCertificate or
CreateCertificateFromCsr, then RegisterThing against the team's provisioning template) come in
with an import. The portal did not sign them and holds no key: it never registers them, leaves
their policies as the template attached them (the fleet's policy is not theirs), and revokes
them on AWS only — its CRL lists what its own CA signed.

The policy confines each device to its own topics exactly as the Mosquitto ACL does
(fleetportal/broker.py: `pattern readwrite $aws/things/%u/#` and `devices/%u/#`): a thing may
connect only with its own name as client id and only through a certificate attached to it, and
may publish, receive and subscribe only under its own two topic roots (fleetportal.topics.
device_roots), with `${iot:Connection.Thing.ThingName}` in the place of `%u`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.conf import settings

from aws_gateway import faults
from aws_gateway.choices import CertificateIssuer
from devices import credentials
from devices.pki.authority import leaf_builder
from devices.pki.base import certificate_pem
from fleetportal import topics

ACTIVE, REVOKED = "ACTIVE", "REVOKED"
POLICY_VERSIONS_KEPT = 4  # AWS keeps at most five versions of a policy


# -- the account ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """Where the gateway's resources live: the ARN prefix of this account's IoT resources."""

    partition: str
    region: str
    account_id: str

    def iot_arn(self, resource: str) -> str:
        return f"arn:{self.partition}:iot:{self.region}:{self.account_id}:{resource}"


def account(sts: Any, iot: Any) -> Account:
    """The account the credentials belong to (GetCallerIdentity) and the region of the client."""
    arn = sts.get_caller_identity()["Arn"]  # arn:<partition>:sts::<account>:…
    partition, account_id = arn.split(":")[1], arn.split(":")[4]
    return Account(partition, iot.meta.region_name, account_id)


# -- the fleet's policy ---------------------------------------------------------------------------


def policy_document(where: Account) -> dict[str, Any]:
    """The fleet's IoT policy: each thing on its own client id and its own topics only."""
    thing = topics.AWS_THING_NAME_VARIABLE
    roots = topics.device_roots(thing)
    topic_arns = [where.iot_arn(f"topic/{name}") for root in roots for name in (root, f"{root}/*")]
    filter_arns = [
        where.iot_arn(f"topicfilter/{name}") for root in roots for name in (root, f"{root}/*")
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": where.iot_arn(f"client/{thing}"),
                # Only through a certificate attached to that very thing.
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"],
                "Resource": topic_arns,
            },
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": filter_arns},
        ],
    }


def ensure_policy(iot: Any, document: dict[str, Any]) -> str:
    """Create the fleet's policy, or make `document` its default version; returns what it did:
    "created", "updated" or "unchanged"."""
    name = settings.AWS_POLICY_NAME
    text = orjson.dumps(document).decode()
    try:
        current = iot.get_policy(policyName=name)
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
        iot.create_policy(policyName=name, policyDocument=text)
        return "created"
    if orjson.loads(current["policyDocument"]) == document:
        return "unchanged"
    _make_room_for_a_version(iot, name)
    iot.create_policy_version(policyName=name, policyDocument=text, setAsDefault=True)
    return "updated"


def policy_differs(iot: Any, document: dict[str, Any]) -> bool:
    """Whether the fleet's policy exists with another document (ensure_policy would update it)."""
    try:
        current = iot.get_policy(policyName=settings.AWS_POLICY_NAME)
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
        return False
    return orjson.loads(current["policyDocument"]) != document


def templates_using_policy(iot: Any, policy_name: str) -> list[str]:
    """The fleet provisioning templates that attach this policy (by name) to the certificates
    AWS issues through them: changing it changes what those devices may do."""
    found = []
    for page in iot.get_paginator("list_provisioning_templates").paginate():
        for template in page["templates"]:
            name = template["templateName"]
            body = iot.describe_provisioning_template(templateName=name)["templateBody"]
            if policy_name in _policy_names(body):
                found.append(name)
    return found


def _policy_names(template_body: str) -> set[str]:
    """The policies a provisioning template names outright (a {"Ref": …} parameter names none
    the portal could clash with)."""
    try:
        resources = orjson.loads(template_body).get("Resources") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return set()
    if not isinstance(resources, dict):
        return set()
    names = set()
    for resource in resources.values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::IoT::Policy":
            continue
        properties = resource.get("Properties")
        name = properties.get("PolicyName") if isinstance(properties, dict) else None
        if isinstance(name, str):
            names.add(name)
    return names


def _make_room_for_a_version(iot: Any, name: str) -> None:
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    old = sorted(
        (v for v in versions if not v["isDefaultVersion"]), key=lambda v: int(v["versionId"])
    )
    for version in old[: max(0, len(versions) - POLICY_VERSIONS_KEPT)]:
        iot.delete_policy_version(policyName=name, policyVersionId=version["versionId"])


# -- the CA ---------------------------------------------------------------------------------------


def ca_pem() -> str:
    """The issuing CA's certificate: it signs every device certificate, so AWS must know it."""
    return certificate_pem(credentials.load_authority().issuing_cert)


def certificate_id(pem: str) -> str:
    """AWS's certificateId of a certificate: SHA-256 of its DER, hex (as DeviceCredential's
    fingerprint)."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def issuer(pem: str) -> str:
    """Whether the portal's issuing CA signed this certificate (CertificateIssuer.PORTAL) or
    someone else did (AWS, for a certificate AWS's fleet provisioning issued)."""
    certificate = x509.load_pem_x509_certificate(pem.encode())
    try:
        certificate.verify_directly_issued_by(credentials.load_authority().issuing_cert)
    except (ValueError, TypeError, InvalidSignature):
        return CertificateIssuer.AWS
    return CertificateIssuer.PORTAL


def ensure_ca_registered(iot: Any) -> str:
    """Register the portal's issuing CA with AWS IoT (active, with the verification certificate
    AWS asks for: CN = the account's registration code, signed by the CA); returns "created",
    "updated" (it was there, inactive) or "unchanged"."""
    pem = ca_pem()
    try:
        described = iot.describe_ca_certificate(certificateId=certificate_id(pem))
    except faults.AWS_ERRORS as exc:
        if not faults.is_not_found(exc):
            raise
        iot.register_ca_certificate(
            caCertificate=pem,
            verificationCertificate=_verification_certificate(iot),
            setAsActive=True,
            allowAutoRegistration=False,
        )
        return "created"
    if described["certificateDescription"]["status"] == ACTIVE:
        return "unchanged"
    iot.update_ca_certificate(certificateId=certificate_id(pem), newStatus=ACTIVE)
    return "updated"


def _verification_certificate(iot: Any) -> str:
    """CN = the registration code, signed by the CA, for a day; its key is thrown away. Its only
    extended key usage is code signing, so no TLS server (the portal's Mosquitto included)
    accepts it as a client certificate."""
    code = iot.get_registration_code()["registrationCode"]
    ca = credentials.load_authority()
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        leaf_builder(ca, key.public_key(), code, datetime.now(UTC) - timedelta(minutes=5), 1)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca.issuing_key, hashes.SHA256())
    )
    return certificate_pem(certificate)


# -- device certificates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    certificate_id: str
    certificate_arn: str


def register_certificate(iot: Any, pem: str) -> Registered:
    """Register and activate a device certificate the portal's CA signed; one registered
    before (a sync that died after this call) is found, not refused."""
    try:
        answer = iot.register_certificate(
            certificatePem=pem, caCertificatePem=ca_pem(), status=ACTIVE
        )
    except faults.AWS_ERRORS as exc:
        if not faults.is_already_there(exc):
            raise
        described = iot.describe_certificate(certificateId=certificate_id(pem))
        answer = described["certificateDescription"]
        if answer["status"] != ACTIVE:
            iot.update_certificate(certificateId=answer["certificateId"], newStatus=ACTIVE)
    return Registered(answer["certificateId"], answer["certificateArn"])


def attach(iot: Any, thing_name: str, registered: Registered, *, with_policy: bool = True) -> None:
    """Attach the certificate to its thing and (`with_policy`) to the fleet's policy; both are
    idempotent. AWS-issued certificates keep the policies their provisioning template attached."""
    iot.attach_thing_principal(thingName=thing_name, principal=registered.certificate_arn)
    if with_policy:
        iot.attach_policy(policyName=settings.AWS_POLICY_NAME, target=registered.certificate_arn)


def revoke_certificate(iot: Any, certificate_id_: str) -> None:
    """Mark a certificate REVOKED on AWS: AWS IoT refuses its connections from then on."""
    iot.update_certificate(certificateId=certificate_id_, newStatus=REVOKED)
