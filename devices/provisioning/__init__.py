"""Provisioning by claim (device-protocol.md §3) and provisioning templates.

- claim: create-from-csr, create, RegisterThing and the expiry of unused ownership tokens;
- templates: the template rules, saving templates (the broker's claim ACL follows) and claim
  certificates;
- hook: the pre-provisioning hook's request, confined to the hosts the operator allows;
- errors: the refusals, each with its MQTT rejected document.
"""

from devices.provisioning.claim import (
    EXPIRED_REASON,
    ClaimResult,
    create_from_csr,
    create_keys,
    expire_pending,
    register_thing,
    render,
    resolve_parameters,
    token_hash,
)
from devices.provisioning.errors import (
    AccessDenied,
    InternalFailure,
    InvalidCertificateOwnershipToken,
    InvalidPayload,
    ProvisioningError,
    ResourceNotFound,
    Throttling,
)
from devices.provisioning.templates import (
    ClaimCertificate,
    claim_templates,
    delete_template,
    issue_claim_certificate,
    refresh_broker,
    save_template,
    template_errors,
    validate_template,
)

__all__ = [
    "EXPIRED_REASON",
    "AccessDenied",
    "ClaimCertificate",
    "ClaimResult",
    "InternalFailure",
    "InvalidCertificateOwnershipToken",
    "InvalidPayload",
    "ProvisioningError",
    "ResourceNotFound",
    "Throttling",
    "claim_templates",
    "create_from_csr",
    "create_keys",
    "delete_template",
    "expire_pending",
    "issue_claim_certificate",
    "refresh_broker",
    "register_thing",
    "render",
    "resolve_parameters",
    "save_template",
    "template_errors",
    "token_hash",
    "validate_template",
]
