"""Refusals every server entry point makes before it serves (daphne, Celery worker and beat).

`manage.py` commands get the same refusal from system check fleetportal.E001; these entry points
do not run system checks, so they ask here.
"""

from django.conf import settings


class InsecureKeyError(SystemExit):
    """Raised instead of serving with the public built-in secret key."""


def require_real_secret_key(entry_point: str) -> None:
    if settings.DEBUG or settings.ALLOW_INSECURE_KEY:
        return
    if settings.SECRET_KEY == settings.INSECURE_KEY:
        raise InsecureKeyError(
            f"{entry_point}: refusing to start with the built-in insecure secret key "
            "(debug is off). Set FLEETPORTAL_SECRET_KEY or FLEETPORTAL_SECRET_KEY_FILE "
            "(`make run` generates var/secret_key)."
        )
