"""Gives the operator roles their rights on configuration.

Every role reads configuration values, the devices' effective configuration and the change log;
Fleet operator and Fleet admin also set, change and remove values. Effective configuration and
the change log are written only by the service, so nobody gets add/change on them.
"""

from django.db import migrations

from fleetportal import roles

VIEW = ["view_configvalue", "view_deviceconfiguration", "view_configchange"]
CHANGE = [*VIEW, "add_configvalue", "change_configvalue", "delete_configvalue"]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": CHANGE, "Fleet admin": CHANGE}


def grant(apps, schema_editor):
    roles.grant(apps, "shadows", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "shadows", ROLES)


class Migration(migrations.Migration):
    dependencies = [("shadows", "0003_configuration")]

    operations = [migrations.RunPython(grant, revoke)]
