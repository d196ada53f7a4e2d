"""Fleet admins manage the API tokens of every user who is not a superuser (fleetportal.admin)."""

from django.db import migrations

from fleetportal import roles

ROLES = {roles.ADMIN: ["manage_others_tokens"]}


def grant(apps, schema_editor):
    roles.grant(apps, "fleetportal", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "fleetportal", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("fleetportal", "0003_api_token"),
        ("devices", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
