from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aws_gateway import client, consumer, errors


class Command(BaseCommand):
    help = (
        "Consume the SQS queue the AWS IoT rules forward device reports to (shadow documents, "
        "lifecycle events, job execution events, telemetry), batched, deleted after commit."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--queue-url",
            default="",
            help="Default: FLEETPORTAL_AWS_QUEUE_URL, else the URL of the queue named "
            "FLEETPORTAL_AWS_QUEUE_NAME (the one aws_setup creates).",
        )
        parser.add_argument("--rounds", type=int, default=None, help="Stop after N receives.")

    def handle(self, *args, queue_url, rounds, **options):
        queue_url = queue_url or settings.AWS_QUEUE_URL or _named_queue()
        self.stdout.write(f"runsqs: consuming {queue_url}")
        consumer.run(queue_url, rounds=rounds)


def _named_queue() -> str:
    """The URL of the queue `manage.py aws_setup` created (FLEETPORTAL_AWS_QUEUE_NAME)."""
    name = settings.AWS_QUEUE_NAME
    try:
        return client.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    except errors.AWS_ERRORS as error:
        raise CommandError(
            f"No queue: FLEETPORTAL_AWS_QUEUE_URL is not set and the queue {name!r} cannot be "
            f"found ({errors.describe(error)}); run `manage.py aws_setup` or pass --queue-url."
        ) from None
