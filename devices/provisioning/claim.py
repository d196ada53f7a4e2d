"""Fleet provisioning by claim (device-protocol.md §3): create-from-csr, create, RegisterThing.

A factory device holds a claim certificate (CN "claim.<template>") that the broker lets reach
only the provisioning topics. With it the device asks for its own certificate, whose CN is its
device_id-to-be; that certificate stays *pending* — held in the CRL (reason certificateHold), so
the broker refuses it — until RegisterThing presents the one-time ownership token and the
template registers the device. Every function here runs in one transaction: a refusal leaves no
device, no active certificate and an unused token behind.
"""

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from devices import credentials, gateway_doors, pki, revocation, services
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.models import Device, DeviceCredential, ProvisioningTemplate
from devices.provisioning import hook
from devices.provisioning.errors import (
    AccessDenied,
    InvalidCertificateOwnershipToken,
    InvalidPayload,
    ResourceNotFound,
)
from fleetportal import outbox, topics
from fleetportal.actors import DEVICE
from fleetportal.bridge import coverage
from fleetportal.errors import DomainError

logger = logging.getLogger(__name__)

MAX_PARAMETER_LENGTH = 1024
EXPIRED_REASON = "ownership token expired"


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimResult:
    """A pending certificate handed to a claiming device (and its key, for create/json)."""

    certificate_id: str
    certificate_pem: str
    ownership_token: str
    private_key: str | None = None

    def document(self) -> dict:
        reply = {"certificateId": self.certificate_id, "certificatePem": self.certificate_pem}
        if self.private_key is not None:
            reply["privateKey"] = self.private_key
        reply["certificateOwnershipToken"] = self.ownership_token
        return reply


# --- create-from-csr and create ---------------------------------------------------------------


def create_from_csr(csr_pem: str, claimant: topics.Claimant) -> ClaimResult:
    """Issue a pending certificate for the CSR's CN (the device_id-to-be) and reply accepted,
    to the claimant alone; its ownership token is bound to the claimant's template."""
    csr = _checked_csr(csr_pem)
    device_id = _csr_device_id(csr)
    with transaction.atomic():
        _lock_device_id(device_id)
        _check_unclaimed(device_id)
        ca, days = credentials.load_authority(), settings.DEVICE_CERT_DAYS
        issued = pki.issue_certificate(ca, csr.public_key(), device_id, days=days)
        result = _hold_pending(issued, device_id, claimant.template)
        reply = claimant.reply_topic(topics.accepted(topics.CREATE_FROM_CSR))
        outbox.send(reply, result.document())
    return result


def create_keys(claimant: topics.Claimant) -> ClaimResult:
    """create/json: the portal makes the key, so the reply carries it (§7.9: off by default)."""
    if not settings.CLAIM_CREATE_KEYS:
        raise AccessDenied(
            "This portal does not create keys over MQTT; send a CSR to "
            f"{topics.CREATE_FROM_CSR} instead."
        )
    device_id = "dev-" + secrets.token_hex(12)
    with transaction.atomic():
        ca, days = credentials.load_authority(), settings.DEVICE_CERT_DAYS
        key_pem, issued = pki.generate_key_and_certificate(ca, device_id, days)
        result = _hold_pending(issued, device_id, claimant.template, private_key=key_pem)
        outbox.send(claimant.reply_topic(topics.accepted(topics.CREATE_KEYS)), result.document())
    return result


def _checked_csr(csr_pem: Any) -> x509.CertificateSigningRequest:
    if not isinstance(csr_pem, str) or not csr_pem:
        raise InvalidPayload("certificateSigningRequest must be a PEM string.")
    try:
        csr = pki.load_csr(csr_pem)
        pki.check_csr(csr, _csr_device_id(csr))
    except pki.CsrError as exc:
        raise InvalidPayload(exc.message) from None
    return csr


def _csr_device_id(csr: x509.CertificateSigningRequest) -> str:
    names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(names) != 1 or not isinstance(names[0], str):
        raise InvalidPayload(
            "The CSR's subject must hold exactly one common name: the device ID to provision."
        )
    try:
        pki.certificates.check_certifiable(names[0])
    except pki.DeviceIdNotCertifiable as exc:
        raise InvalidPayload(exc.message) from None
    return names[0]


def _lock_device_id(device_id: str) -> None:
    # Two claims for the same CN must not both pass the checks below; the lock is released at
    # commit, when the first one's pending certificate is visible to the second.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('fleetportal.claim'), hashtext(%s))",
            [device_id],
        )


def _check_unclaimed(device_id: str) -> None:
    if Device.objects.filter(device_id=device_id).exists():
        raise InvalidPayload(
            f"Device {device_id} is already registered; device IDs are not reused."
        )
    waiting = DeviceCredential.objects.filter(
        common_name=device_id,
        status=CredentialStatus.PENDING_ACTIVATION,
        ownership_token_expires_at__gt=timezone.now(),
    )
    if waiting.exists():
        raise InvalidPayload(
            f"A certificate for {device_id} is already waiting for RegisterThing; use its "
            "ownership token, or ask again once that token has expired."
        )


def _hold_pending(
    issued: pki.IssuedCertificate, device_id: str, template: str, private_key: str | None = None
) -> ClaimResult:
    """Record the certificate as pending and hold it in the CRL before anyone can learn it.

    The CRL is published inside this transaction (it reads this transaction's new row), so by
    the time the reply leaves through the outbox at commit, the broker already refuses the
    certificate. If the transaction rolls back, the CRL merely lists a certificate nobody has.
    """
    token = secrets.token_urlsafe(32)
    credential = credentials.new_credential(
        issued, device_id, device=None, status=CredentialStatus.PENDING_ACTIVATION
    )
    credential.ownership_token_hash = token_hash(token)
    credential.claim_template = template
    credential.ownership_token_expires_at = timezone.now() + timedelta(
        seconds=settings.OWNERSHIP_TOKEN_SECONDS
    )
    credential.save(force_insert=True)
    revocation.publish_crl()
    return ClaimResult(issued.fingerprint, issued.pem, token, private_key)


def _release_holds() -> None:
    # A release only lets a certificate in, so nothing needs to wait for the reload.
    revocation.publish_crl(wait=False)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- RegisterThing ----------------------------------------------------------------------------


def register_thing(
    template_name: str, token: Any, parameters: Any, claimant: topics.Claimant
) -> dict:
    """Turn a pending certificate into a registered device, as the template says.

    Only the template's own claim certificate may use it (the broker's ACL already says so),
    and only with a token that a claim certificate of the same template asked for. Returns (and
    queues as the accepted reply, to the claimant alone) {thingName, deviceConfiguration}.
    """
    if claimant.template != template_name:
        raise AccessDenied(
            f"A claim certificate of template {claimant.template} cannot provision through "
            f"template {template_name}."
        )
    if not token or not isinstance(token, str):
        raise InvalidCertificateOwnershipToken("Certificate ownership token cannot be empty.")
    with transaction.atomic():
        credential = _pending_credential(token)
        template = _enabled_template(template_name)
        if credential.claim_template != template.name:
            raise InvalidCertificateOwnershipToken(
                "The certificate ownership token was issued to another template's claim "
                "certificate."
            )
        params = resolve_parameters(template, parameters)
        _check_serial(template, params)
        params = _run_hook(template, credential, params, claimant)
        _check_serial(template, params)
        device = _register(template, params, credential)
        reply = {
            "thingName": device.device_id,
            "deviceConfiguration": dict(template.device_configuration),
        }
        outbox.send(claimant.reply_topic(topics.accepted(topics.provision(template.name))), reply)
        # Release the hold once the certificate is active for everyone to see, and once a
        # partitioned bridge subscribed the device's topics (on_commit keeps this order).
        coverage.wait_until_covered_after_commit([device.device_id], what=device.device_id)
        transaction.on_commit(_release_holds)
    return reply


def _pending_credential(token: str) -> DeviceCredential:
    # The row lock makes the token single-use: a concurrent RegisterThing with the same token
    # waits, then no longer matches (its hash is cleared) and is refused.
    credential = (
        DeviceCredential.objects.select_for_update()
        .filter(ownership_token_hash=token_hash(token))
        .first()
    )
    if credential is None or credential.status != CredentialStatus.PENDING_ACTIVATION:
        raise InvalidCertificateOwnershipToken(
            "The certificate ownership token is unknown or has already been used."
        )
    if credential.ownership_token_expires_at <= timezone.now():
        raise InvalidCertificateOwnershipToken(
            "The certificate ownership token has expired; request a new certificate."
        )
    return credential


def _enabled_template(name: str) -> ProvisioningTemplate:
    template = (
        ProvisioningTemplate.objects.select_related("group").filter(name=name, enabled=True).first()
    )
    if template is None:
        raise ResourceNotFound(f"No enabled provisioning template is named {name!r}.")
    return template


def resolve_parameters(template: ProvisioningTemplate, given: Any) -> dict[str, str]:
    """The request's parameters checked against the template, with defaults filled in."""
    given = {} if given is None else given
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise InvalidPayload("parameters must be an object whose values are strings.")
    declared = template.parameters
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidPayload(
            f"Unknown parameters {', '.join(unknown)}; template {template.name} takes: "
            f"{', '.join(sorted(declared)) or 'none'}."
        )
    missing = sorted(n for n, spec in declared.items() if spec.get("required") and n not in given)
    if missing:
        raise InvalidPayload(f"Missing required parameters: {', '.join(missing)}.")
    for name, value in given.items():
        _check_parameter(name, value, declared[name])
    # Defaults were checked against their patterns when the template was saved.
    return {name: given.get(name, spec.get("default", "")) for name, spec in declared.items()}


def _check_parameter(name: str, value: str, spec: dict) -> None:
    if len(value) > MAX_PARAMETER_LENGTH:
        raise InvalidPayload(f"Parameter {name} is longer than {MAX_PARAMETER_LENGTH} characters.")
    pattern = spec.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise InvalidPayload(f"Parameter {name} does not match the pattern {pattern}.")


def _check_serial(template: ProvisioningTemplate, params: dict[str, str]) -> None:
    allowed = template.allowed_serial_numbers
    if allowed and params.get(template.serial_number_parameter) not in allowed:
        raise AccessDenied(
            f"Serial number {params.get(template.serial_number_parameter)!r} is not on "
            f"template {template.name}'s allow-list."
        )


def _run_hook(
    template: ProvisioningTemplate,
    credential: DeviceCredential,
    params: dict[str, str],
    claimant: topics.Claimant,
) -> dict[str, str]:
    """Ask the pre-provisioning hook (AWS's input and output, §3.2); any failure denies."""
    if not template.pre_provisioning_hook_url:
        return params
    body = {
        # The claim broker tells which client published, not which claim certificate (only
        # its template, and every certificate of a template is alike).
        "claimCertificateId": None,
        "certificateId": credential.fingerprint,
        "certificatePem": credential.credential_value,
        "templateArn": f"fleetportal:provisioningtemplate/{template.name}",
        "clientId": claimant.client_id,
        "parameters": params,
    }
    answer = _post_hook(template.pre_provisioning_hook_url, body)
    if not isinstance(answer, dict) or answer.get("allowProvisioning") is not True:
        raise AccessDenied("The pre-provisioning hook refused this device.")
    overrides = answer.get("parameterOverrides") or {}
    if not isinstance(overrides, dict) or not all(
        name in params and isinstance(value, str) for name, value in overrides.items()
    ):
        logger.warning("Pre-provisioning hook of %s sent bad overrides: %r", template, overrides)
        raise AccessDenied("The pre-provisioning hook answered with invalid parameterOverrides.")
    merged = {**params, **overrides}
    for name, value in overrides.items():
        _check_parameter(name, value, template.parameters[name])
    return merged


def _post_hook(url: str, body: dict) -> Any:
    try:
        return hook.post(url, body)
    except hook.HookFailed as exc:
        logger.warning("Pre-provisioning hook %s failed: %s", url, exc)
        raise AccessDenied("The pre-provisioning hook did not allow provisioning.") from None


def _register(
    template: ProvisioningTemplate, params: dict[str, str], credential: DeviceCredential
) -> Device:
    device_id = credential.common_name
    if template.device_id_template:
        device_id = template.device_id_template.format_map(params)
        if device_id != credential.common_name:
            raise InvalidPayload(
                f"The template names the device {device_id!r}, but the certificate was issued "
                f"for {credential.common_name!r}."
            )
    fields = {
        "device_id": device_id,
        "gateway": template.gateway,  # empty: the device type's default
        "device_type": template.device_type,
        "group": template.group,
        "metadata": render(template.metadata_template, params),
        "serial_number": params.get(template.serial_number_parameter, ""),
    }
    try:
        device = services.register_device(fields, actor=DEVICE)
    except ValidationError as exc:
        raise InvalidPayload(_first_message(exc)) from None
    except DomainError as exc:
        raise InvalidPayload(exc.message) from None
    _activate(credential, device, template, params)
    return device


def _activate(
    credential: DeviceCredential,
    device: Device,
    template: ProvisioningTemplate,
    params: dict[str, str],
) -> None:
    credential.device = device
    credential.status = CredentialStatus.ACTIVE
    credential.ownership_token_hash = ""
    credential.save(update_fields=["device", "status", "ownership_token_hash"])
    gateway_doors.announce_issued([credential])
    data = {"certificateId": credential.fingerprint, "template": template.name}
    services.record_event(device, EventType.CREDENTIAL_ISSUED, actor=DEVICE, data=data)
    reason = f"provisioned by claim (template {template.name})"
    services.transition_device(device, DeviceStatus.PROVISIONING, actor=DEVICE, reason=reason)
    if template.initial_status == DeviceStatus.ACTIVE:
        services.transition_device(device, DeviceStatus.ACTIVE, actor=DEVICE, reason=reason)
    services.record_event(
        device, EventType.PROVISIONED_BY_CLAIM, actor=DEVICE, data={**data, "parameters": params}
    )


def render(value: Any, params: dict[str, str]) -> Any:
    """A metadata template with "{Param}" placeholders filled in, strings at any depth."""
    if isinstance(value, str):
        return value.format_map(params)
    if isinstance(value, dict):
        return {key: render(item, params) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, params) for item in value]
    return value


def _first_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.message_dict.items())
    return " ".join(exc.messages)


# --- expiry -----------------------------------------------------------------------------------


def expire_pending() -> int:
    """Revoke pending certificates whose ownership token expired (§3.1: AWS deletes them)."""
    now = timezone.now()
    with transaction.atomic():
        count = DeviceCredential.objects.filter(
            status=CredentialStatus.PENDING_ACTIVATION, ownership_token_expires_at__lte=now
        ).update(
            status=CredentialStatus.REVOKED,
            revoked=True,
            revoked_at=now,
            revocation_reason=EXPIRED_REASON,
            ownership_token_hash="",
        )
        if count:
            transaction.on_commit(_release_holds)
    return count
