"""Create the portal's firmware signing key once; an existing key is left untouched."""

from django.core.management.base import BaseCommand, CommandError

from firmware import signing


class Command(BaseCommand):
    help = (
        "Create the firmware signing key (ECDSA P-256) at FLEETPORTAL_FIRMWARE_SIGNING_KEY, or "
        "leave an existing key untouched. Devices pin its key id: a new key means new pins."
    )

    def handle(self, *args, **options):
        path = signing.configured_path()
        if path.exists():
            self.stdout.write(f"The firmware signing key {path} exists; left untouched.")
            return
        try:
            key = signing.create_key(path, signing.configured_passphrase())
        except (OSError, signing.SigningKeyError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created the firmware signing key {path} (mode 0600)")
            + f", key id {key.key_id}. `manage.py firmware_public_key` prints its public key."
        )
