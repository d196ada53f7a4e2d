from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import BasePermission, DjangoModelPermissions


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


class FleetPermissions(FleetModelPermissions):
    """Model permissions, but a method the endpoint does not offer is 405 for everyone.

    DRF checks permissions before it looks for the handler, so without this a DELETE on a device
    would be 403 for an admin (no delete permission exists) instead of "not allowed here".
    """

    def has_permission(self, request, view):
        if request.user.is_authenticated and not hasattr(view, request.method.lower()):
            raise MethodNotAllowed(request.method)
        return super().has_permission(request, view)


class HasPermissions(BasePermission):
    """Grants access to authenticated users holding every permission in `perms`."""

    perms: tuple[str, ...] = ()

    def has_permission(self, request, view):
        return request.user.is_authenticated and request.user.has_perms(self.perms)
