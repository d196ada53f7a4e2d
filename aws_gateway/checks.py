"""System checks of the AWS gateway's settings."""

from django.conf import settings
from django.core.checks import Error, register

from aws_gateway.choices import Decommission


@register()
def check_decommission(app_configs, **kwargs):
    if settings.AWS_DECOMMISSION not in Decommission.values:
        return [
            Error(
                f"FLEETPORTAL_AWS_DECOMMISSION is {settings.AWS_DECOMMISSION!r}.",
                hint="Set it to delete (the thing goes) or disable (it stays, marked "
                "decommissioned).",
                id="aws_gateway.E001",
            )
        ]
    return []
