"""Give the demo fleet's in-service devices certificates the simulator runs them with (`make
run`, after seed_demo): key and CSR made here as a factory would, signed by the portal's CA, and
written as the simulator's store (default var/simulator/demo/<device_id>/). Idempotent: a device
whose certificate there is one of its live ones is left alone; a demo device no longer in
service (decommissioned) is removed from the store."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devices import pki
from firmware import demo


class Command(BaseCommand):
    help = (
        "Issue certificates for the demo fleet's in-service devices into the simulator's store "
        "(run after seed_demo and init_ca). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--store", type=Path, help="The store directory (default var/simulator/demo)."
        )

    def handle(self, *args, store, **options):
        directory = store or demo.store_directory()
        try:
            result = demo.issue_certificates(directory)
        except pki.CaError as exc:
            raise CommandError(f"{exc} (run manage.py init_ca first)") from exc
        for device_id, reason in result.refused.items():
            self.stderr.write(f"{device_id}: refused: {reason}")
        retired = f", {len(result.retired)} out of service removed" if result.retired else ""
        self.stdout.write(
            f"Demo devices: {len(result.issued)} certificate(s) issued, {result.kept} kept"
            f"{retired}, in {directory}."
        )
