"""Certificate signing requests from devices: what the portal agrees to sign.

The key rules follow AWS IoT's CreateCertificateFromCsr: an RSA key of at least 2048 bits or an
EC key on NIST P-256, P-384 or P-521. The certificate carries only what the portal decides (CN =
device_id, client-auth usage); the CSR's other subject fields and requested extensions are ignored.
"""

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from .base import as_bytes
from .errors import CsrError

MAX_CSR_BYTES = 16 * 1024  # an RSA-8192 CSR is about 2.5 KiB
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
ACCEPTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")
ACCEPTED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
ACCEPTED_KEYS = "an EC key on P-256, P-384 or P-521, or an RSA key of 2048 to 8192 bits"
_KEY_NAMES = {
    dsa.DSAPublicKey: "DSA",
    ed25519.Ed25519PublicKey: "Ed25519",
    ed448.Ed448PublicKey: "Ed448",
}


def load_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    try:
        data = as_bytes(pem)
        if len(data) > MAX_CSR_BYTES:
            raise ValueError("too large")
        return x509.load_pem_x509_csr(data)
    except (ValueError, UnicodeEncodeError):
        raise CsrError(
            "malformed_csr",
            "The CSR is not a PEM-encoded PKCS#10 request: expected one block from "
            "'-----BEGIN CERTIFICATE REQUEST-----' to '-----END CERTIFICATE REQUEST-----' "
            f"(at most {MAX_CSR_BYTES // 1024} KiB).",
        ) from None


def check_csr(csr: x509.CertificateSigningRequest, device_id: str) -> None:
    """Refuse (CsrError) a CSR the portal must not sign for device_id."""
    # Key and hash first: cryptography reports a SHA-1 signature as invalid, which would hide
    # the real reason from the integrator.
    _check_key(csr)
    _check_signature_hash(csr)
    _check_signature(csr)
    _check_common_name(csr, device_id)


def _check_signature(csr: x509.CertificateSigningRequest) -> None:
    # The self-signature proves the requester holds the private key of the key it asks us to sign.
    try:
        valid = csr.is_signature_valid
    except UnsupportedAlgorithm:
        raise _unsupported_key() from None
    if not valid:
        raise CsrError(
            "bad_signature",
            "The CSR's signature does not verify with its own public key: it was altered "
            "or not signed with the matching private key.",
        )


def _check_key(csr: x509.CertificateSigningRequest) -> None:
    try:
        key = csr.public_key()
    except UnsupportedAlgorithm:
        raise _unsupported_key() from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrError(
                "weak_key",
                f"The CSR's RSA key has {key.key_size} bits, too few to be safe; "
                f"use {ACCEPTED_KEYS}.",
            )
        if key.key_size > MAX_RSA_BITS:
            raise _unsupported_key(f"{key.key_size}-bit RSA")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ACCEPTED_CURVES:
            code = "weak_key" if key.curve.key_size < 256 else "unsupported_key"
            raise CsrError(
                code, f"The CSR's EC curve {key.curve.name} is not accepted; use {ACCEPTED_KEYS}."
            )
    else:
        name = next((n for cls, n in _KEY_NAMES.items() if isinstance(key, cls)), None)
        raise _unsupported_key(name)


def _check_signature_hash(csr: x509.CertificateSigningRequest) -> None:
    try:
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if not isinstance(algorithm, ACCEPTED_HASHES):
        name = algorithm.name.upper() if algorithm else "an unsupported algorithm"
        raise CsrError(
            "weak_signature",
            f"The CSR is signed with {name}; sign it with SHA-256, SHA-384 or SHA-512.",
        )


def _check_common_name(csr: x509.CertificateSigningRequest, device_id: str) -> None:
    names = [
        attribute.value for attribute in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    if len(names) > 1 or (names and names[0] != device_id):
        raise CsrError(
            "cn_mismatch",
            f"The CSR's common name {', '.join(map(str, names))!r} is not this device's ID "
            f"{device_id!r}; set CN to the device ID or leave it out.",
        )


def _unsupported_key(name: str | None = None) -> CsrError:
    kind = f"{name} key" if name else "key type"
    return CsrError("unsupported_key", f"The CSR's {kind} is not accepted; use {ACCEPTED_KEYS}.")
