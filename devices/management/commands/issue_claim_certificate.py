"""Issue a claim certificate for a provisioning template and write it for the factory."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devices import pki, provisioning
from devices.models import ProvisioningTemplate
from fleetportal.actors import SYSTEM

KEY, CERT, CHAIN = "claim.key", "claim.pem", "ca-chain.pem"


class Command(BaseCommand):
    help = (
        "Issue a claim certificate (CN claim.<template>) for fleet provisioning and write "
        f"{KEY} (mode 0600), {CERT} and {CHAIN} into --out. The key is not kept anywhere else."
    )

    def add_arguments(self, parser):
        parser.add_argument("template", help="The provisioning template's name.")
        parser.add_argument("--out", required=True, type=Path, help="Directory to write into.")

    def handle(self, *args, template, out: Path, **options):
        found = ProvisioningTemplate.objects.filter(name=template).first()
        if found is None:
            raise CommandError(f"No provisioning template is named {template!r}.")
        existing = [name for name in (KEY, CERT, CHAIN) if (out / name).exists()]
        if existing:
            raise CommandError(f"{out} already holds {', '.join(existing)}; nothing written.")
        try:
            claim = provisioning.issue_claim_certificate(found, actor=SYSTEM)
        except pki.CaError as exc:
            raise CommandError(str(exc)) from exc
        out.mkdir(parents=True, exist_ok=True)
        write(out / KEY, claim.key_pem, 0o600)
        write(out / CERT, claim.cert_pem, 0o644)
        write(out / CHAIN, claim.chain_pem, 0o644)
        disabled = "" if found.enabled else " The template is disabled: enable it to use this."
        self.stdout.write(
            self.style.SUCCESS(f"Wrote claim certificate {claim.certificate_id} to {out}.")
            + f" It may only provision devices with template {template}.{disabled}"
        )


def write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), mode)  # exact, whatever the umask
        f.write(text)
