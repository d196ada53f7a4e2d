"""Run Mosquitto in the foreground with the configuration `manage.py broker_config` wrote."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fleetportal import broker


class Command(BaseCommand):
    help = "Replace this process with Mosquitto running the generated configuration."

    def handle(self, *args, **options):
        config = broker.path(broker.CONFIG)
        if not config.exists():
            raise CommandError(f"{config} does not exist; run `manage.py broker_config` first.")
        if broker.is_running():
            raise CommandError(
                f"A broker from {broker.broker_dir()} is running (pid {broker.running_pid()})."
            )
        self.stdout.write(f"runbroker: logging to {broker.path(broker.LOG_FILE)}")
        self.stdout.flush()
        # exec, so that signals (Ctrl-C, SIGTERM, SIGHUP for reloads) reach Mosquitto itself.
        os.execv(settings.MOSQUITTO_BINARY, [settings.MOSQUITTO_BINARY, "-c", str(config)])  # noqa: S606
