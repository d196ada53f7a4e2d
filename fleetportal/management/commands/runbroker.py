"""Run Mosquitto in the foreground with the configuration `manage.py broker_config` wrote."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fleetportal import broker, limits


class Command(BaseCommand):
    help = "Replace this process with Mosquitto running the generated configuration."

    def add_arguments(self, parser):
        parser.add_argument(
            "--claim",
            action="store_true",
            help="Run the claim broker (claim certificates, fleet provisioning) instead.",
        )

    def handle(self, *args, claim=False, **options):
        instance = broker.CLAIM_DIR if claim else ""
        config = broker.path(broker.CLAIM_CONFIG if claim else broker.CONFIG)
        if not config.exists():
            raise CommandError(f"{config} does not exist; run `manage.py broker_config` first.")
        if broker.running_pid(instance) is not None:
            raise CommandError(
                f"A broker from {config.parent} is running (pid {broker.running_pid(instance)})."
            )
        # One open file per device connection: Mosquitto inherits this limit and does not raise
        # it itself (docs/connections.md).
        open_files, _ = limits.raise_open_files_limit()
        self.stdout.write(
            f"runbroker: logging to {config.parent / broker.LOG_FILE}; "
            f"up to {open_files:,} open files (connections)"
        )
        self.stdout.flush()
        # exec, so that signals (Ctrl-C, SIGTERM, SIGHUP for reloads) reach Mosquitto itself.
        os.execv(settings.MOSQUITTO_BINARY, [settings.MOSQUITTO_BINARY, "-c", str(config)])  # noqa: S606
