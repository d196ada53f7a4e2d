"""Provisioning templates (their rules, saving them, the broker's claim ACL) and claim certificates.

A claim certificate (CN "claim.<template>") may reach only its template's provisioning topics on
the broker's claim listener; the ACL is rewritten whenever a template is saved or deleted.
"""

import logging
import re
import string
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from devices import credentials, pki, revocation
from devices.models import ProvisioningTemplate
from devices.provisioning import hook
from fleetportal import broker

logger = logging.getLogger(__name__)

PARAMETER_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
PARAMETER_KEYS = {"required", "default", "pattern", "description"}


class ClaimCertificate(NamedTuple):
    key_pem: str
    cert_pem: str
    certificate_id: str
    chain_pem: str


def template_errors(template: ProvisioningTemplate) -> dict[str, list[str]]:
    """The rules a template must follow beyond its fields' own validators, by field."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    declared = template.parameters if isinstance(template.parameters, dict) else {}
    for message in _parameter_schema_errors(template.parameters):
        add("parameters", message)
    for field, value in (
        ("device_id_template", template.device_id_template),
        ("metadata_template", template.metadata_template),
    ):
        for message in _placeholder_errors(value, declared):
            add(field, message)
    configuration = template.device_configuration
    if not isinstance(configuration, dict) or not all(
        isinstance(v, str) for v in configuration.values()
    ):
        add("device_configuration", "Must be a flat object of strings (no nesting, §3.2).")
    serials = template.allowed_serial_numbers
    if not isinstance(serials, list) or not all(isinstance(s, str) for s in serials):
        add("allowed_serial_numbers", "Must be a list of strings.")
    elif serials and template.serial_number_parameter not in declared:
        add(
            "serial_number_parameter",
            f"An allow-list needs the parameter {template.serial_number_parameter!r} declared.",
        )
    if template.group_id and template.group.is_dynamic:
        add("group", "A dynamic group's members come from its filter; pick a static group.")
    for message in hook.url_errors(template.pre_provisioning_hook_url):
        add("pre_provisioning_hook_url", message)
    if template.allow_create_keys and template.device_id_template:
        add(
            "allow_create_keys",
            "create/json certificates get a generated device ID, which no device_id_template "
            "can match; leave device_id_template empty to allow it.",
        )
    return errors


def validate_template(template: ProvisioningTemplate) -> None:
    errors = template_errors(template)
    if errors:
        raise ValidationError(errors)


def _parameter_schema_errors(parameters: Any) -> list[str]:
    if not isinstance(parameters, dict):
        return ["Must be an object: {name: {required?, default?, pattern?, description?}}."]
    messages = []
    for name, spec in parameters.items():
        if not re.fullmatch(PARAMETER_NAME, name):
            messages.append(f"{name!r} is not a parameter name (letters, digits, '_').")
        if not isinstance(spec, dict):
            messages.append(f"{name}: must be an object.")
            continue
        unknown = sorted(set(spec) - PARAMETER_KEYS)
        if unknown:
            messages.append(f"{name}: unknown keys {', '.join(unknown)}.")
        if not isinstance(spec.get("required", False), bool):
            messages.append(f"{name}: required must be true or false.")
        if "default" in spec and (spec.get("required") or not isinstance(spec["default"], str)):
            messages.append(f"{name}: default must be a string, on an optional parameter.")
        if "pattern" in spec:
            messages.extend(f"{name}: {m}" for m in _pattern_errors(spec))
    return messages


def _pattern_errors(spec: dict) -> list[str]:
    try:
        compiled = re.compile(spec["pattern"])
    except (re.error, TypeError) as exc:
        return [f"pattern is not a regular expression ({exc})."]
    default = spec.get("default")
    if isinstance(default, str) and default and not compiled.fullmatch(default):
        return ["the default does not match the pattern."]
    return []


def _placeholder_errors(value: Any, declared: dict) -> list[str]:
    if isinstance(value, dict):
        return [m for item in value.values() for m in _placeholder_errors(item, declared)]
    if isinstance(value, list):
        return [m for item in value for m in _placeholder_errors(item, declared)]
    if not isinstance(value, str):
        return []
    try:
        fields = [
            (f, spec, conv) for _, f, spec, conv in string.Formatter().parse(value) if f is not None
        ]
    except ValueError as exc:
        return [f"{value!r}: {exc} (write {{{{ and }}}} for literal braces)."]
    messages = []
    for name, spec, conversion in fields:
        if not re.fullmatch(PARAMETER_NAME, name) or spec or conversion:
            messages.append(f"{{{name}}} is not a plain {{Parameter}} placeholder.")
        elif name not in declared:
            messages.append(f"{{{name}}} names no declared parameter.")
    return messages


def save_template(template: ProvisioningTemplate) -> ProvisioningTemplate:
    """Validate and save a template; the broker's claim ACL follows after commit."""
    validate_template(template)
    with transaction.atomic():
        template.full_clean()
        template.save()
        transaction.on_commit(refresh_broker)
    return template


def delete_template(template: ProvisioningTemplate) -> None:
    with transaction.atomic():
        template.delete()
        transaction.on_commit(refresh_broker)


def refresh_broker() -> None:
    """Rewrite the claim listener's ACL (one user per enabled template) and reload the broker.

    The reload re-reads the CRL too, so the CRL is rebuilt from the database and validated first
    (revocation.publish_crl): a damaged crl.pem is never what the broker loads. Skipped where no
    broker configuration exists yet (`manage.py broker_config` writes it, with the same templates).
    """
    if broker.path(broker.CONFIG).exists():
        broker.write_claim_acl(claim_templates(), reload_broker=False)
        try:
            revocation.publish_crl()
        except (broker.BrokerError, pki.CaError):
            # The template is committed; the broker keeps its old files and the CRL re-sign task
            # retries. Loud, because enrolment under this template waits for it.
            logger.exception("The broker was not reloaded after a provisioning template change.")


def claim_templates() -> list[broker.ClaimTemplate]:
    """The enabled templates, as the claim listener's ACL needs them."""
    allow_keys = settings.CLAIM_CREATE_KEYS
    return [
        broker.ClaimTemplate(name, allow_keys and allowed)
        for name, allowed in ProvisioningTemplate.objects.filter(enabled=True)
        .order_by("name")
        .values_list("name", "allow_create_keys")
    ]


def issue_claim_certificate(template: ProvisioningTemplate, *, actor: str) -> ClaimCertificate:
    """A claim certificate for template (CN "claim.<name>"), recorded; its key is not kept."""
    ca = credentials.load_authority()
    key_pem, issued = pki.issue_claim_certificate(ca, template.name, days=settings.DEVICE_CERT_DAYS)
    claim = credentials.new_credential(issued, pki.CLAIM_PREFIX + template.name, device=None)
    claim.save(force_insert=True)
    logger.info(
        "Claim certificate %s for template %s issued by %s", issued.fingerprint, template, actor
    )
    return ClaimCertificate(key_pem, issued.pem, issued.fingerprint, ca.chain_pem)
