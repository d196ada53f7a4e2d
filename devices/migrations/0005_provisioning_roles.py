"""Gives the operator roles their rights on provisioning templates and bulk provisioning jobs.

Fleet viewer and Fleet operator see them; Fleet admin also creates, changes and deletes
templates (and issues their claim certificates) and uploads bulk jobs (and downloads their
credential bundles).
"""

from django.db import migrations

from fleetportal import roles

VIEW = ["view_provisioningtemplate", "view_bulkprovisioningjob"]
ADMINISTER = [
    *VIEW,
    "add_provisioningtemplate",
    "change_provisioningtemplate",
    "delete_provisioningtemplate",
    "add_bulkprovisioningjob",
    "change_bulkprovisioningjob",
    "delete_bulkprovisioningjob",
]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": VIEW, "Fleet admin": ADMINISTER}


def grant(apps, schema_editor):
    roles.grant(apps, "devices", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "devices", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0004_credential_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
