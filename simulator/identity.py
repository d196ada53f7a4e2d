"""A device's credentials as firmware keeps them: its private key (made on the device, mode
0600) and certificate, one directory per device, plus the CA chain it trusts.

The layout is the portal's bulk provisioning bundle unzipped (`ca-chain.pem`, then
`<device_id>/certificate.pem` and `<device_id>/private.key`), so certificates the portal issued
are used as they come, and a device that provisioned itself by claim is found again on the next
run instead of claiming a second time.
"""

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTIFICATE, PRIVATE_KEY = "certificate.pem", "private.key"
NEW_CERTIFICATE, NEW_PRIVATE_KEY = "certificate.new.pem", "private.new.key"
CA_CHAIN = "ca-chain.pem"
CLAIM_CERTIFICATE, CLAIM_KEY = "claim.pem", "claim.key"  # manage.py issue_claim_certificate


@dataclass(frozen=True)
class Credentials:
    cert_file: Path
    key_file: Path

    def context(self, ca_file: Path) -> ssl.SSLContext:
        """A client TLS context: trusts only the portal's CA, presents this certificate."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def common_name(self) -> str:
        """The certificate's CN: the device id the portal knows the device by."""
        certificate = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    def certificate_id(self) -> str:
        """The SHA-256 fingerprint: what the portal calls the certificate's id."""
        certificate = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        return certificate.fingerprint(hashes.SHA256()).hex()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def csr_pem(key: ec.EllipticCurvePrivateKey, common_name: str) -> str:
    """A PKCS#10 request whose one CN is the device id (what create-from-csr and rotation need)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject)
    return request.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


class Store:
    """The credentials of every device of a fleet, under one directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def device_ids(self) -> list[str]:
        """The devices that have a certificate here, in name order (not the aliases)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path.parent.name
            for path in self.directory.glob(f"*/{CERTIFICATE}")
            if (path.parent / PRIVATE_KEY).is_file() and not path.parent.is_symlink()
        )

    def current(self, device_id: str) -> Credentials | None:
        folder = self.directory / device_id
        found = Credentials(folder / CERTIFICATE, folder / PRIVATE_KEY)
        return found if found.cert_file.is_file() and found.key_file.is_file() else None

    def pending(self, device_id: str) -> Credentials | None:
        """A rotation's new certificate, not yet confirmed."""
        folder = self.directory / device_id
        found = Credentials(folder / NEW_CERTIFICATE, folder / NEW_PRIVATE_KEY)
        return found if found.cert_file.is_file() and found.key_file.is_file() else None

    def save(self, device_id: str, key: str, certificate: str, *, new: bool = False) -> Credentials:
        folder = self.directory / device_id
        folder.mkdir(parents=True, exist_ok=True)
        names = (NEW_PRIVATE_KEY, NEW_CERTIFICATE) if new else (PRIVATE_KEY, CERTIFICATE)
        _write(folder / names[0], key, 0o600)
        _write(folder / names[1], certificate, 0o644)
        return Credentials(folder / names[1], folder / names[0])

    def promote(self, device_id: str) -> Credentials:
        """The rotation is confirmed: the new certificate and key replace the old ones."""
        folder = self.directory / device_id
        os.replace(folder / NEW_PRIVATE_KEY, folder / PRIVATE_KEY)
        os.replace(folder / NEW_CERTIFICATE, folder / CERTIFICATE)
        return Credentials(folder / CERTIFICATE, folder / PRIVATE_KEY)

    def alias(self, name: str, device_id: str) -> None:
        """Find device_id's credentials under `name` too (a device the portal named)."""
        link = self.directory / name
        if name != device_id and not link.exists():
            link.symlink_to(device_id, target_is_directory=True)

    def discard_pending(self, device_id: str) -> None:
        for name in (NEW_PRIVATE_KEY, NEW_CERTIFICATE):
            (self.directory / device_id / name).unlink(missing_ok=True)


def _write(path: Path, text: str, mode: int) -> None:
    """Whole or not at all (temp file + rename), with its mode from the start."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), mode)
        f.write(text)
    os.replace(temporary, path)
