"""System checks that turn a misconfiguration into a clear message with a stable id."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=False)
def check_secret_key(app_configs, **kwargs):
    if settings.DEBUG or settings.ALLOW_INSECURE_KEY:
        return []
    if settings.SECRET_KEY == settings.INSECURE_KEY:
        return [
            Error(
                "FLEETPORTAL_SECRET_KEY is not set while debug is off.",
                hint="Set FLEETPORTAL_SECRET_KEY (or FLEETPORTAL_SECRET_KEY_FILE) to a long "
                "random value, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="fleetportal.E001",
            )
        ]
    return []


@register()
def check_online_window(app_configs, **kwargs):
    if settings.DEVICE_ONLINE_WINDOW_SECONDS <= 0:
        return [
            Error(
                "FLEETPORTAL_ONLINE_WINDOW_SECONDS must be positive.",
                hint="A device counts as online while its last message is younger than this.",
                id="fleetportal.E002",
            )
        ]
    return []
