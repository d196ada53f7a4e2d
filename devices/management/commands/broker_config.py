"""Write the Mosquitto configuration from the CA, the CRL and the enabled provisioning templates."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices import pki, provisioning, revocation
from fleetportal import broker


class Command(BaseCommand):
    help = (
        "Write mosquitto.conf, its ACLs, password file, certificates and CRL into "
        "FLEETPORTAL_BROKER_DIR, and reload the broker if it is running."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind-address",
            default="",
            help="Listen on this address only (default: every interface).",
        )

    def handle(self, *args, bind_address="", **options):
        try:
            config = broker.write_config(
                provisioning.claim_templates(),
                crl_pem=revocation.build_current_crl(),
                bind_address=bind_address,
            )
        except (broker.BrokerError, pki.CaError) as exc:
            raise CommandError(str(exc)) from exc
        reloaded = broker.reload()
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {config}")
            + (" and reloaded the running broker." if reloaded else ".")
            + f"\nStart the broker with: {settings.MOSQUITTO_BINARY} -c {config}"
        )
