"""What the PKI refuses: client mistakes are DomainErrors (mapped to 4xx), CA trouble is not."""

from pathlib import Path

from fleetportal.errors import DomainError


class CaError(Exception):
    """The CA's files are missing, unreadable or inconsistent: the operator's problem."""


class CaExists(CaError):
    def __init__(self, directory: Path, names: list[str]):
        super().__init__(
            f"{directory} already holds {', '.join(names)}; existing CA files are never "
            "overwritten. Move them away first to start a new CA (every certificate issued by "
            "the old one then stops working)."
        )
        self.names = names


class CrlError(Exception):
    """A CRL that must not reach the broker: Mosquitto fails open on a bad one (§7.4)."""


class CsrError(DomainError):
    """A certificate signing request the portal will not sign."""

    field = "csr"

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class CertificateError(DomainError):
    """A certificate that does not prove a device identity issued by this portal."""

    field = "certificate"

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class DeviceIdNotCertifiable(DomainError):
    field = "device_id"
    code = "not_certifiable"

    def __init__(self, device_id: str, reason: str):
        super().__init__(f"No certificate can name device {device_id!r}: {reason}")
