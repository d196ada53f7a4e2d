"""The identity service's refusals and their rejected document (device-protocol.md §3.1, §8.8)."""

from fleetportal.errors import DomainError


class ProvisioningError(DomainError):
    """A refused provisioning request; `document()` is the MQTT rejected payload."""

    code = "InternalFailure"
    http_status = 500

    def document(self) -> dict:
        return {
            "statusCode": self.http_status,
            "errorCode": self.code,
            "errorMessage": self.message,
        }


class InvalidPayload(ProvisioningError):
    code, http_status = "InvalidPayload", 400


class InvalidCertificateOwnershipToken(ProvisioningError):
    code, http_status = "InvalidCertificateOwnershipToken", 400


class ResourceNotFound(ProvisioningError):
    code, http_status = "ResourceNotFound", 404


class AccessDenied(ProvisioningError):
    code, http_status = "AccessDenied", 403


class Throttling(ProvisioningError):
    code, http_status = "Throttling", 429


class InternalFailure(ProvisioningError):
    code, http_status = "InternalFailure", 500
