"""Fleet admins read the lockouts (security events); nobody edits them."""

from django.db import migrations

from fleetportal import roles

ROLES = {roles.ADMIN: ["view_securityevent"]}


def grant(apps, schema_editor):
    roles.grant(apps, "fleetportal", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "fleetportal", ROLES)


class Migration(migrations.Migration):
    dependencies = [("fleetportal", "0005_security_event")]
    operations = [migrations.RunPython(grant, revoke)]
