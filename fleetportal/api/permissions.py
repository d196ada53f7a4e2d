from rest_framework.permissions import DjangoModelPermissions


class FleetModelPermissions(DjangoModelPermissions):
    """Django model permissions, with reads requiring the model's `view` permission.

    The roles (Fleet viewer / operator / admin) are groups holding these permissions, so the
    admin and the API enforce the same rules.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }
