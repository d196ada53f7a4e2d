"""Create the portal's certificate authority (and the broker's server certificate) once."""

import ipaddress
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices import pki


def name_list(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    help = (
        "Create the root and issuing CA in FLEETPORTAL_CA_DIR, or leave an existing CA untouched. "
        "Existing CA files are never overwritten."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--server-hostnames",
            type=name_list,
            metavar="NAME[,NAME…]",
            help="Also write server.pem/server.key for the broker, with these host names and IP "
            "addresses (127.0.0.1 is always included). Left untouched if they exist.",
        )
        parser.add_argument(
            "--root-key-out",
            type=Path,
            metavar="PATH",
            help="Write the new root CA's key to PATH (removable media, say) instead of the CA "
            "directory: the portal needs only the issuing CA's key to issue, revoke and sign CRLs.",
        )

    def handle(self, *args, server_hostnames=None, root_key_out=None, **options):
        directory = Path(getattr(settings, "FLEETPORTAL_CA_DIR", settings.BASE_DIR / "var" / "ca"))
        passphrase = getattr(settings, "FLEETPORTAL_CA_PASSPHRASE", None) or None
        if pki.ca_exists(directory):
            self.stdout.write(f"The certificate authority in {directory} exists; left untouched.")
        else:
            self._run(pki.create_ca, directory, passphrase=passphrase, root_key_path=root_key_out)
            root_key = root_key_out or directory / pki.authority.ROOT_KEY
            self.stdout.write(
                self.style.SUCCESS(f"Created the certificate authority in {directory}.")
                + f"\nDevices and the broker trust {directory / pki.authority.CHAIN}. "
                f"The root key is {root_key} and the issuing key "
                f"{directory / pki.authority.ISSUING_KEY} (both mode 0600); the portal "
                "needs only the issuing key, so keep the root key offline."
            )
        if server_hostnames is not None:
            self._server_certificate(directory, passphrase, server_hostnames)

    def _server_certificate(self, directory: Path, passphrase, names: list[str]) -> None:
        if pki.server_files_exist(directory):
            self.stdout.write(
                f"The broker certificate {directory / pki.authority.SERVER_CERT} exists; "
                "left untouched (move server.pem and server.key away to issue a new one)."
            )
            return
        hostnames, ips = split_hostnames(names)
        ca = self._run(pki.load_ca, directory, passphrase)
        key_pem, cert_pem = self._run(pki.server_certificate, ca, hostnames, ips)
        self._run(pki.write_server_files, directory, key_pem, cert_pem)
        covered = ", ".join(dict.fromkeys([*hostnames, *ips, "127.0.0.1"]))
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote the broker certificate {directory / pki.authority.SERVER_CERT}"
            )
            + f" for {covered}; its key is {pki.authority.SERVER_KEY} (mode 0600)."
        )

    def _run(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (pki.CaError, ValueError) as exc:  # ValueError: a host name x509 refuses
            raise CommandError(str(exc)) from exc


def split_hostnames(names: list[str]) -> tuple[list[str], list[str]]:
    """Split --server-hostnames into DNS names and IP addresses (which need IP SANs)."""
    hostnames, ips = [], []
    for name in names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            hostnames.append(name)
    return hostnames, ips
