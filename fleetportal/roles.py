"""Helpers for the data migrations that give the operator roles (Django groups) their rights.

Each app's migration names, per role, the codenames of its own models' permissions; these
helpers make sure the permissions exist (Django creates them only after all migrations) and
add or remove them.
"""

from django.contrib.auth.management import create_permissions

VIEWER = "Fleet viewer"
OPERATOR = "Fleet operator"
ADMIN = "Fleet admin"


def _permissions(apps, app_label: str, codenames: list[str]):
    app_config = apps.get_app_config(app_label)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)


def grant(apps, app_label: str, roles: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    for role, codenames in roles.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_permissions(apps, app_label, codenames))


def revoke(apps, app_label: str, roles: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    for role, codenames in roles.items():
        for group in Group.objects.filter(name=role):
            group.permissions.remove(*_permissions(apps, app_label, codenames))
