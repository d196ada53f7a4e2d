"""Run the bridge: the portal's MQTT client (inbound handlers and the outbox publisher)."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from fleetportal.bridge import runner
from fleetportal.bridge.partitions import Partition


class Command(BaseCommand):
    help = (
        "Consume device messages from the broker's backend listener (ack after commit) and "
        "publish the outbox. Stops cleanly on SIGINT/SIGTERM. With --partitions N > 1, run one "
        "such process per --partition 0..N-1: each owns the devices the partition function "
        "gives it (architecture.md §3)."
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
        parser.add_argument(
            "--partition", type=int, default=0, help="Which partition this bridge owns (0..N-1)."
        )
        parser.add_argument(
            "--partitions",
            type=int,
            default=1,
            help="How many partitioned bridges run (N). Changing it: stop all, drain, restart.",
        )

    def handle(self, *args, no_publisher=False, publisher_only=False, **options):
        try:
            partition = Partition(options["partition"], options["partitions"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        layout = f" ({partition})" if partition.partitioned else ""
        self.stdout.write(f"runbridge: started{layout}")
        runner.run_forever(
            stop, publisher=not no_publisher, inbound=not publisher_only, partition=partition
        )
        self.stdout.write("runbridge: stopped")
