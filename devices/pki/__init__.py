"""The portal's PKI: its CA, device certificates from CSRs, and the broker's CRL.

Pure cryptography (python `cryptography`) on PEM files and values; no database. The registry
(DeviceCredential) records what is issued and revoked, and calls these functions.
"""

from .authority import (
    CertificateAuthority,
    ca_exists,
    create_ca,
    load_ca,
    server_certificate,
    server_files_exist,
    write_server_files,
)
from .certificates import (
    CLAIM_PREFIX,
    IssuedCertificate,
    generate_key_and_certificate,
    issue_certificate,
    issue_claim_certificate,
    verify_device_certificate,
)
from .crl import build_crl, validate_crl
from .csr import check_csr, load_csr
from .errors import (
    CaError,
    CaExists,
    CertificateError,
    CrlError,
    CsrError,
    DeviceIdNotCertifiable,
)

__all__ = [
    "CLAIM_PREFIX",
    "CaError",
    "CaExists",
    "CertificateAuthority",
    "CertificateError",
    "CrlError",
    "CsrError",
    "DeviceIdNotCertifiable",
    "IssuedCertificate",
    "build_crl",
    "ca_exists",
    "check_csr",
    "create_ca",
    "generate_key_and_certificate",
    "issue_certificate",
    "issue_claim_certificate",
    "load_ca",
    "load_csr",
    "server_certificate",
    "server_files_exist",
    "validate_crl",
    "verify_device_certificate",
    "write_server_files",
]
