from django.core.management.base import BaseCommand, CommandError

from aws_gateway import faults, setup


class Command(BaseCommand):
    help = (
        "Create (idempotently) what the AWS gateway needs on the account: the CA registration, "
        "the IoT policy, thing types, the SQS queue, the topic rules and job execution events; "
        "prints what it did."
    )

    def handle(self, *args, **options):
        try:
            steps = setup.run()
        except faults.AWS_ERRORS as exc:
            raise CommandError(faults.describe(exc)) from exc
        if not setup.report(steps, self.stdout.write):
            raise CommandError("Some steps are not done (see above).")
