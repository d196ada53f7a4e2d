"""The certificate revocation list the broker loads (device-protocol.md §7.4).

Mosquitto reads the CRL at start and on SIGHUP; a corrupt one makes it accept revoked
certificates and an expired one locks every device out. So: build, validate_crl(), then
hand it to fleetportal.broker.publish_crl (which writes it atomically and durably with
fleetportal.files.write_atomically) to reload the broker; and re-sign before next_update.
"""

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization

from .authority import CertificateAuthority
from .base import CLOCK_SKEW, as_bytes, now
from .errors import CrlError

# Reasons by RFC 5280 name ("keyCompromise") or Python name ("key_compromise"). Anything else,
# e.g. an operator's free text, is recorded without a reason code rather than failing the CRL.
_REASONS = {flag.value: flag for flag in x509.ReasonFlags} | {
    flag.name: flag for flag in x509.ReasonFlags
}


def build_crl(
    ca: CertificateAuthority,
    revoked: Iterable[tuple[int, datetime, str | None]],
    *,
    next_update_hours: float,
) -> bytes:
    """A PEM CRL signed by the issuing CA listing (serial, revoked_at, reason) entries."""
    if next_update_hours <= 0:
        raise ValueError("next_update_hours must be positive.")
    issued = now()
    entries = [_entry(serial, revoked_at, reason) for serial, revoked_at, reason in revoked]
    # The builder copies its list on every add_revoked_certificate(); handing it the whole list
    # keeps a CRL of many thousands of entries linear.
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=entries)
        .issuer_name(ca.issuing_cert.subject)
        .last_update(issued - CLOCK_SKEW)
        .next_update(issued + timedelta(hours=next_update_hours))
        # Time-based so that it grows across processes and restarts without stored state.
        .add_extension(x509.CRLNumber(time.time_ns()), critical=False)
        .add_extension(ca.authority_key_identifier, critical=False)
    )
    return builder.sign(ca.issuing_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def validate_crl(
    pem: bytes | str, ca: CertificateAuthority, *, at: datetime | None = None
) -> x509.CertificateRevocationList:
    """The parsed CRL if the broker may load it: ours, intact, and current at `at` (now)."""
    try:
        crl = x509.load_pem_x509_crl(as_bytes(pem))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CrlError(f"The CRL cannot be parsed: {exc}") from None
    if crl.issuer != ca.issuing_cert.subject:
        raise CrlError(f"The CRL is issued by {crl.issuer.rfc4514_string()}, not our issuing CA.")
    try:
        valid = crl.is_signature_valid(ca.issuing_key.public_key())
    except (TypeError, ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise CrlError("The CRL's signature does not verify with the issuing CA's key.")
    at = at or now()
    if crl.next_update_utc is None or crl.next_update_utc <= at:
        raise CrlError(
            f"The CRL's next update ({crl.next_update_utc}) has passed: the broker would refuse "
            "every device with it."
        )
    if crl.last_update_utc > at + CLOCK_SKEW:
        raise CrlError(f"The CRL is dated in the future ({crl.last_update_utc}).")
    return crl


def _entry(serial: int, revoked_at: datetime, reason: str | None) -> x509.RevokedCertificate:
    if revoked_at.tzinfo is None:
        revoked_at = revoked_at.replace(tzinfo=UTC)
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
    flag = _REASONS.get(reason or "")
    # RFC 5280 §5.3.1: "unspecified" is expressed by leaving the reason out.
    if flag and flag is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(flag), critical=False)
    return builder.build()
