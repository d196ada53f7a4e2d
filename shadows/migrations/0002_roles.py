"""Gives the operator roles their rights on device shadows.

Every role reads shadows and their history; Fleet operator and Fleet admin also set desired
state (change_shadow). History is written only by the service, so nobody gets add/change on it.
"""

from django.db import migrations

from fleetportal import roles

VIEW = ["view_shadow", "view_shadowhistory"]
CHANGE = [*VIEW, "change_shadow"]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": CHANGE, "Fleet admin": CHANGE}


def grant(apps, schema_editor):
    roles.grant(apps, "shadows", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "shadows", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("shadows", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
