"""Gives the operator roles their rights on device certificates.

Fleet viewer sees certificates; Fleet operator also revokes them (change_devicecredential: a
certificate is never edited, revoking is its only change); Fleet admin also issues them.
"""

from django.db import migrations

from fleetportal import roles

ROLES = {
    "Fleet viewer": ["view_devicecredential"],
    "Fleet operator": ["view_devicecredential", "change_devicecredential"],
    "Fleet admin": ["view_devicecredential", "change_devicecredential", "add_devicecredential"],
}


def grant(apps, schema_editor):
    roles.grant(apps, "devices", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "devices", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0003_identity"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
