"""Run the bridge: the portal's MQTT client (inbound handlers and the outbox publisher)."""

import signal
import threading

from django.core.management.base import BaseCommand

from fleetportal.bridge import runner


class Command(BaseCommand):
    help = (
        "Consume device messages from the broker's backend listener (ack after commit) and "
        "publish the outbox. Stops cleanly on SIGINT/SIGTERM."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-publisher", action="store_true", help="Do not publish the outbox here."
        )
        parser.add_argument(
            "--publisher-only",
            action="store_true",
            help="Only publish the outbox (run the runner in another process: one core each).",
        )

    def handle(self, *args, no_publisher=False, publisher_only=False, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("runbridge: started")
        runner.run_forever(stop, publisher=not no_publisher, inbound=not publisher_only)
        self.stdout.write("runbridge: stopped")
