"""Gives the operator roles their rights on device certificates.

Fleet viewer sees certificates; Fleet operator also revokes them (change_devicecredential: a
certificate is never edited, revoking is its only change); Fleet admin also issues them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Fleet viewer": ["view_devicecredential"],
    "Fleet operator": ["view_devicecredential", "change_devicecredential"],
    "Fleet admin": ["view_devicecredential", "change_devicecredential", "add_devicecredential"],
}


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
        ("devices", "0003_identity"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
