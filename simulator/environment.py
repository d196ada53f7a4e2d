"""Everything a simulated device is given at the factory: where the broker is, the CA it trusts,
its claim certificate (or a certificate the portal issued), the firmware signing key it was built
with, and what it is (device type, hardware and starting firmware version)."""

import ssl
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from simulator import identity
from simulator.firmware import TrustedKey


@dataclass(frozen=True)
class Claim:
    """Provisioning by claim (docs/device-protocol.md §4): the template's claim certificate and
    the parameters RegisterThing is sent (the serial number parameter is filled per device)."""

    directory: Path  # claim.pem and claim.key, as manage.py issue_claim_certificate writes them
    template: str
    serial_parameter: str = "SerialNumber"
    parameters: dict[str, str] = field(default_factory=dict)
    create_keys: bool = False  # CreateKeysAndCertificate instead of CreateCertificateFromCsr

    def context(self, ca_file: Path) -> ssl.SSLContext:
        credentials = identity.Credentials(
            self.directory / identity.CLAIM_CERTIFICATE, self.directory / identity.CLAIM_KEY
        )
        return credentials.context(ca_file)


@dataclass(frozen=True)
class Environment:
    host: str
    device_port: int
    ca_file: Path  # the CA chain every device trusts (var/ca/chain.pem)
    store: Path  # the devices' credentials, one directory each (simulator.identity)
    claim_port: int | None = None
    claim: Claim | None = None  # None: every device needs a certificate in `store`
    firmware_key_pem: str | None = None  # None: every firmware job is refused
    device_type: str = "sensor"
    hardware_version: str = "1.0"
    firmware_version: str = "1.0.0"
    claims_at_once: int = 20  # concurrent claim connections (the claim broker's share)

    @cached_property
    def trusted_key(self) -> TrustedKey | None:
        return TrustedKey.from_pem(self.firmware_key_pem) if self.firmware_key_pem else None

    @cached_property
    def claim_context(self) -> ssl.SSLContext | None:
        return self.claim.context(self.ca_file) if self.claim else None

    @cached_property
    def credentials(self) -> identity.Store:
        return identity.Store(self.store)

    def https_context(self) -> ssl.SSLContext:
        """For https downloads: the system's trust plus the portal's CA."""
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.ca_file))
        return context
