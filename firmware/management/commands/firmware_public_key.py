"""Print the firmware signing key's public key (PEM) and key id, for devices to pin."""

from django.core.management.base import BaseCommand, CommandError

from firmware import signing


class Command(BaseCommand):
    help = "Print the public key that verifies firmware manifests, and its key id."

    def handle(self, *args, **options):
        try:
            key = signing.current()
        except signing.SigningKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"key id: {key.key_id}\nalgorithm: {signing.ALGORITHM}")
        self.stdout.write(key.public_key_pem, ending="")
