"""Create the first superuser with a generated password, shown once (used by `make run`)."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser with a random password and print the password once. "
        "If the user exists, nothing changes unless --reset-password is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Give an existing user a new random password and print it.",
        )

    def handle(self, *args, username, email, reset_password, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is not None and not reset_password:
            self.stdout.write(
                f"User {username!r} exists; its password is unchanged "
                f"(manage.py createadmin --username {username} --reset-password for a new one)."
            )
            return
        password = secrets.token_urlsafe(18)
        if user is None:
            User.objects.create_superuser(username=username, email=email, password=password)
            self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(self.style.SUCCESS(f"New password set for {username!r}."))
        # The only place the password ever appears: it is not stored anywhere in clear.
        self.stdout.write(f"  username: {username}\n  password: {password}\n")
        self.stdout.write("Keep the password now; it is not shown again.")
