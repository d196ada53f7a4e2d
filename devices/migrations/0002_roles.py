"""Creates the operator roles as Django groups holding model permissions.

Fleet viewer reads everything; Fleet operator also moves devices through the lifecycle and manages
groups; Fleet admin may do everything. Later apps extend these groups in their own migrations.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    "devices.view_device",
    "devices.view_devicegroup",
    "devices.view_deviceevent",
]
OPERATE = [
    *VIEW,
    "devices.change_device_status",
    "devices.add_devicegroup",
    "devices.change_devicegroup",
    "devices.delete_devicegroup",
]
ADMINISTER = [
    *OPERATE,
    "devices.add_device",
    "devices.change_device",
    "authtoken.view_token",
    "authtoken.add_token",
    "authtoken.change_token",
    "authtoken.delete_token",
]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": OPERATE, "Fleet admin": ADMINISTER}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make them exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
