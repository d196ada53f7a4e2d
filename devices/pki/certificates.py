"""Device certificates: issuing them (CN = device_id) and checking one a device presents."""

import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from devices.validators import DEVICE_ID_PATTERN, TEMPLATE_NAME_PATTERN

from .authority import CertificateAuthority, leaf_builder
from .base import CLOCK_SKEW, as_bytes, certificate_pem, new_key, now, private_key_pem
from .errors import CertificateError, DeviceIdNotCertifiable

# RFC 5280's upper bound for a common name (ub-common-name); cryptography enforces it.
MAX_COMMON_NAME = 64
# The CN of a claim certificate: the broker's claim listener grants it its template's topics.
CLAIM_PREFIX = "claim."


@dataclass(frozen=True)
class IssuedCertificate:
    """A freshly signed device certificate and the facts the registry stores about it."""

    pem: str
    serial_number: int
    fingerprint: str  # SHA-256 of the DER, 64 lowercase hex: AWS's certificateId (§3.1)
    not_before: datetime
    not_after: datetime


def issue_certificate(
    ca: CertificateAuthority, public_key, device_id: str, *, days: int
) -> IssuedCertificate:
    """Sign public_key (already accepted by check_csr, or generated here) for device_id."""
    check_certifiable(device_id)
    return _client_certificate(ca, public_key, device_id, days)


def issue_claim_certificate(
    ca: CertificateAuthority, template_name: str, *, days: int
) -> tuple[str, IssuedCertificate]:
    """A claim certificate (CN "claim.<template>") and its new key, for fleet provisioning.

    The '.' cannot occur in a device ID, so the CN owns no device's topics on the broker.
    """
    if not re.fullmatch(TEMPLATE_NAME_PATTERN, template_name):
        raise DeviceIdNotCertifiable(template_name, "it is not a valid template name.")
    key = new_key()
    return private_key_pem(key), _client_certificate(
        ca, key.public_key(), CLAIM_PREFIX + template_name, days
    )


def _client_certificate(ca, public_key, name: str, days: int) -> IssuedCertificate:
    certificate = (
        leaf_builder(ca, public_key, name, now() - CLOCK_SKEW, days)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.issuing_key, hashes.SHA256())
    )
    return IssuedCertificate(
        pem=certificate_pem(certificate),
        serial_number=certificate.serial_number,
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def generate_key_and_certificate(
    ca: CertificateAuthority, device_id: str, days: int
) -> tuple[str, IssuedCertificate]:
    """For devices that cannot make a CSR: the caller hands the key out once and keeps no copy."""
    key = new_key()
    return private_key_pem(key), issue_certificate(ca, key.public_key(), device_id, days=days)


def check_certifiable(device_id: str) -> None:
    # The CN becomes the MQTT username and the %u of the broker's ACL patterns, so a character
    # like '/' or '#' would widen a device's topics; re-check here rather than trust every caller.
    if not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        raise DeviceIdNotCertifiable(device_id, "it is not a valid device ID.")
    if len(device_id) > MAX_COMMON_NAME:
        raise DeviceIdNotCertifiable(
            device_id, f"a certificate's common name holds at most {MAX_COMMON_NAME} characters."
        )


def verify_device_certificate(
    ca: CertificateAuthority, cert_pem: str | bytes, *, at: datetime | None = None
) -> x509.Certificate:
    """The certificate, if our issuing CA signed it for a client and it is valid at `at` (now).

    Revocation is not checked here: whether a certificate is still current is the registry's
    record, not the certificate's.
    """
    try:
        certificate = x509.load_pem_x509_certificate(as_bytes(cert_pem))
    except (ValueError, UnicodeEncodeError):
        raise CertificateError(
            "malformed_certificate", "The certificate is not a PEM-encoded X.509 certificate."
        ) from None
    try:
        certificate.verify_directly_issued_by(ca.issuing_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(
            "unknown_issuer",
            "The certificate was not issued by this portal's certificate authority.",
        ) from None
    _check_validity(certificate, at or now())
    if not _is_client_certificate(certificate):
        raise CertificateError(
            "wrong_purpose", "The certificate is not a device (TLS client) certificate."
        )
    return certificate


def _check_validity(certificate: x509.Certificate, at: datetime) -> None:
    if at < certificate.not_valid_before_utc:
        raise CertificateError(
            "not_yet_valid",
            f"The certificate is valid only from {certificate.not_valid_before_utc.isoformat()}.",
        )
    if at > certificate.not_valid_after_utc:
        raise CertificateError(
            "expired",
            f"The certificate expired at {certificate.not_valid_after_utc.isoformat()}.",
        )


def _is_client_certificate(certificate: x509.Certificate) -> bool:
    """Not a CA, and meant for TLS clients: the broker's own certificate is not an identity."""
    extensions = certificate.extensions
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages
