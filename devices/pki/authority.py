"""The portal's certificate authority: a root CA and an issuing CA, as PEM files in one directory.

The root signs only the issuing CA; the issuing CA signs device and broker certificates and the
CRL. load_ca() reads neither root.key nor anything the issuing CA does not need, so root.key can
live offline: `init_ca --root-key-out` writes it elsewhere from the start, or an operator moves it
away later; the CA still counts as existing without it (ONLINE_FILES).
"""

import contextlib
import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fleetportal.files import fsync_directory

from .base import (
    CLOCK_SKEW,
    certificate_pem,
    common_name,
    key_usage,
    new_key,
    now,
    private_key_pem,
)
from .errors import CaError, CaExists

ROOT_DAYS = 20 * 365 + 5
ISSUING_DAYS = 10 * 365 + 2
SERVER_DAYS = 825

ROOT_CERT, ROOT_KEY = "root.pem", "root.key"
ISSUING_CERT, ISSUING_KEY = "issuing.pem", "issuing.key"
CHAIN = "chain.pem"
CA_FILES = (ROOT_CERT, ROOT_KEY, ISSUING_CERT, ISSUING_KEY, CHAIN)
# What the running portal needs: it issues, revokes and signs CRLs with the issuing CA alone.
ONLINE_FILES = (ROOT_CERT, ISSUING_CERT, ISSUING_KEY, CHAIN)
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"

PRIVATE, PUBLIC = 0o600, 0o644


@dataclass(frozen=True)
class CertificateAuthority:
    """The issuing CA's key and certificate and the root above it, as load_ca() reads them."""

    issuing_key: ec.EllipticCurvePrivateKey
    issuing_cert: x509.Certificate
    root_cert: x509.Certificate
    chain_pem: str  # issuing + root: the trust bundle for devices and the broker's cafile

    @cached_property
    def authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        ski = self.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def ca_exists(directory: str | os.PathLike) -> bool:
    """The CA the portal runs on is there (root.key may have been taken offline)."""
    return all((Path(directory) / name).exists() for name in ONLINE_FILES)


def root_key_online(directory: str | os.PathLike) -> bool:
    return (Path(directory) / ROOT_KEY).exists()


def create_ca(
    directory: str | os.PathLike,
    *,
    passphrase: str | bytes | None = None,
    common_name_prefix: str = "fleetportal",
    root_key_path: str | os.PathLike | None = None,
) -> CertificateAuthority:
    """Create root and issuing CA files in directory; refuse (CaExists) if any of them exists.

    With `root_key_path` the root key is written there (say, removable media) instead of into
    the directory: the portal never needs it again, only to renew the issuing CA.
    """
    directory = Path(directory)
    root_key_file = Path(root_key_path) if root_key_path else directory / ROOT_KEY
    existing = [name for name in CA_FILES if (directory / name).exists()]
    existing += [str(root_key_file)] if root_key_path and root_key_file.exists() else []
    if existing:
        raise CaExists(directory, existing)
    _make_private_directory(directory)
    start = now() - CLOCK_SKEW
    root_key, issuing_key = new_key(), new_key()
    root_cert = _ca_certificate(
        f"{common_name_prefix} Root CA", root_key, root_key.public_key(), None, start, ROOT_DAYS
    )
    issuing_cert = _ca_certificate(
        f"{common_name_prefix} Issuing CA",
        root_key,
        issuing_key.public_key(),
        root_cert,
        start,
        ISSUING_DAYS,
    )
    secret = _passphrase_bytes(passphrase)
    chain = certificate_pem(issuing_cert) + certificate_pem(root_cert)
    _write_new_files(
        {
            root_key_file: (private_key_pem(root_key, secret), PRIVATE),
            directory / ISSUING_KEY: (private_key_pem(issuing_key, secret), PRIVATE),
            directory / ROOT_CERT: (certificate_pem(root_cert), PUBLIC),
            directory / ISSUING_CERT: (certificate_pem(issuing_cert), PUBLIC),
            directory / CHAIN: (chain, PUBLIC),
        },
    )
    return CertificateAuthority(issuing_key, issuing_cert, root_cert, chain)


def load_ca(
    directory: str | os.PathLike, passphrase: str | bytes | None = None
) -> CertificateAuthority:
    """Read the issuing CA from directory, checking that its key, certificate and root agree."""
    directory = Path(directory)
    try:
        root_cert = x509.load_pem_x509_certificate((directory / ROOT_CERT).read_bytes())
        issuing_cert = x509.load_pem_x509_certificate((directory / ISSUING_CERT).read_bytes())
        key_pem = (directory / ISSUING_KEY).read_bytes()
    except FileNotFoundError as exc:
        raise CaError(
            f"No certificate authority in {directory} ({exc.filename} is missing); "
            "run `manage.py init_ca`."
        ) from exc
    except ValueError as exc:
        raise CaError(f"A CA certificate in {directory} cannot be read: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=_passphrase_bytes(passphrase))
    except (TypeError, ValueError) as exc:
        # TypeError: a passphrase given for a plain key or missing for an encrypted one.
        raise CaError(
            f"{directory / ISSUING_KEY} cannot be read: {exc} (check FLEETPORTAL_CA_PASSPHRASE)."
        ) from exc
    _check_consistent(directory, key, issuing_cert, root_cert)
    chain = certificate_pem(issuing_cert) + certificate_pem(root_cert)
    return CertificateAuthority(key, issuing_cert, root_cert, chain)


def server_certificate(
    ca: CertificateAuthority,
    hostnames: list[str],
    ip_addresses: list[str],
    *,
    days: int = SERVER_DAYS,
) -> tuple[str, str]:
    """A broker key and certificate (key_pem, cert_pem); 127.0.0.1 is always a SAN.

    cert_pem holds the server certificate followed by the issuing CA, ready for Mosquitto's
    certfile, so devices that trust only root.pem can still build the chain.
    """
    ips = [ipaddress.ip_address(ip) for ip in dict.fromkeys(["127.0.0.1", *ip_addresses])]
    names = list(dict.fromkeys(hostnames))
    key = new_key()
    start = now() - CLOCK_SKEW
    san = [x509.DNSName(name) for name in names] + [x509.IPAddress(ip) for ip in ips]
    certificate = (
        leaf_builder(ca, key.public_key(), names[0] if names else str(ips[0]), start, days)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.issuing_key, hashes.SHA256())
    )
    return private_key_pem(key), certificate_pem(certificate) + certificate_pem(ca.issuing_cert)


def server_files_exist(directory: str | os.PathLike) -> bool:
    return all((Path(directory) / name).exists() for name in (SERVER_CERT, SERVER_KEY))


def write_server_files(directory: str | os.PathLike, key_pem: str, cert_pem: str) -> None:
    """Write server.key (0600) and server.pem; refuse (CaExists) if either exists."""
    directory = Path(directory)
    existing = [name for name in (SERVER_CERT, SERVER_KEY) if (directory / name).exists()]
    if existing:
        raise CaExists(directory, existing)
    _write_new_files(
        {directory / SERVER_KEY: (key_pem, PRIVATE), directory / SERVER_CERT: (cert_pem, PUBLIC)}
    )


def leaf_builder(ca, public_key, name: str, start: datetime, days: int) -> x509.CertificateBuilder:
    """An end-entity certificate signed by the issuing CA; callers add the EKU (and SANs)."""
    if days < 1:
        raise ValueError(f"A certificate must be valid for at least one day, not {days}.")
    # A certificate cannot outlive the CA that signs it: clients would reject it from then on.
    end = min(start + timedelta(days=days), ca.issuing_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(common_name(name))
        .issuer_name(ca.issuing_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(ca.authority_key_identifier, critical=False)
    )


def _ca_certificate(name, signing_key, public_key, issuer, start, days) -> x509.Certificate:
    """The root (issuer None, may sign one CA level below it) or the issuing CA (signs leaves)."""
    subject = common_name(name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=0 if issuer else 1), critical=True
        )
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _check_consistent(directory: Path, key, issuing_cert, root_cert) -> None:
    """Catch mixed-up files at load time rather than as certificates nobody can verify."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"{directory / ISSUING_KEY} is not an EC key.")
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != issuing_cert.public_key().public_bytes(
        der, spki
    ):
        raise CaError(f"{directory / ISSUING_KEY} does not belong to {ISSUING_CERT}.")
    try:
        issuing_cert.verify_directly_issued_by(root_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CaError(f"{ISSUING_CERT} in {directory} is not signed by {ROOT_CERT}.") from exc


def _passphrase_bytes(passphrase: str | bytes | None) -> bytes | None:
    if not passphrase:
        return None
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase


def _make_private_directory(directory: Path) -> None:
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_new_files(files: dict[Path, tuple[str, int]]) -> None:
    """Write every file or none: O_EXCL refuses existing paths (and symlinks planted there).
    The directories are fsynced too, so a crash cannot lose a CA that has issued certificates."""
    written = []
    try:
        for path, (text, mode) in files.items():
            _write_new(path, text.encode("ascii"), mode)
            written.append(path)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    for directory in {path.parent for path in files}:
        fsync_directory(directory)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise CaExists(path.parent, [path.name]) from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # exact mode whatever the umask (the broker reads the certs)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
