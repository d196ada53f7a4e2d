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
            default=None,
            help=(
                "The address the device and claim listeners bind, '' for every interface "
                "(default: FLEETPORTAL_BROKER_BIND_ADDRESS, 127.0.0.1)."
            ),
        )

    def handle(self, *args, bind_address=None, **options):
        try:
            config = broker.write_config(
                provisioning.claim_templates(),
                crl_pem=revocation.build_current_crl(),
                bind_address=bind_address,
            )
        except (broker.BrokerError, pki.CaError) as exc:
            raise CommandError(str(exc)) from exc
        if broker.running_pid() is None:
            # `make run` calls this just before it starts the broker: no alarm, just the facts.
            self.stdout.write(
                self.style.SUCCESS(f"Wrote {config}.")
                + " The broker reads it when it starts (`make run` starts it; by hand: "
                + f"{settings.MOSQUITTO_BINARY} -c {config})."
            )
            return
        if not broker.reload():
            raise CommandError(f"Wrote {config}, but the running broker did not reload it.")
        self.stdout.write(self.style.SUCCESS(f"Wrote {config} and reloaded the running broker."))
