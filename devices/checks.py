"""Deployment checks for the registry's certificate authority."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Tags, Warning, register

from devices.pki import authority


@register(Tags.security, deploy=True)
def check_root_key_offline(app_configs, **kwargs):
    directory = Path(settings.FLEETPORTAL_CA_DIR)
    if not authority.root_key_online(directory):
        return []
    return [
        Warning(
            f"The root CA key {directory / authority.ROOT_KEY} is on the server.",
            hint="The portal issues, revokes and signs CRLs with the issuing CA's key alone: move "
            "root.key to offline storage (or create the CA with `manage.py init_ca "
            "--root-key-out PATH`). It is needed again only to renew the issuing CA.",
            id="devices.W001",
        )
    ]
