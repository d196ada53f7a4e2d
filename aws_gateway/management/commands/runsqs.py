from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aws_gateway import consumer


class Command(BaseCommand):
    help = (
        "Consume the SQS queue the AWS IoT rules forward device reports to (shadow documents, "
        "lifecycle events, job execution events, telemetry), batched, deleted after commit."
    )

    def add_arguments(self, parser):
        parser.add_argument("--queue-url", default="", help="Default: FLEETPORTAL_AWS_QUEUE_URL.")
        parser.add_argument("--rounds", type=int, default=None, help="Stop after N receives.")

    def handle(self, *args, queue_url, rounds, **options):
        queue_url = queue_url or settings.AWS_QUEUE_URL
        if not queue_url:
            raise CommandError("No queue: set FLEETPORTAL_AWS_QUEUE_URL or pass --queue-url.")
        self.stdout.write(f"runsqs: consuming {queue_url}")
        consumer.run(queue_url, rounds=rounds)
