"""Gives the operator roles their rights on provisioning templates and bulk provisioning jobs.

Fleet viewer and Fleet operator see them; Fleet admin also creates, changes and deletes
templates (and issues their claim certificates) and uploads bulk jobs (and downloads their
credential bundles).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

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


def _permissions(apps, codenames):
    # Permissions are normally created after all migrations; make them exist now.
    app_config = apps.get_app_config("devices")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(content_type__app_label="devices", codename__in=codenames)


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_permissions(apps, codenames))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role, codenames in ROLES.items():
        for group in Group.objects.filter(name=role):
            group.permissions.remove(*_permissions(apps, codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0004_credential_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
