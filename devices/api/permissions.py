from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import BasePermission

from fleetportal.api.permissions import FleetModelPermissions


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


class CanTransitionDevices(HasPermissions):
    perms = ("devices.view_device", "devices.change_device_status")


class CanViewDeviceEvents(HasPermissions):
    perms = ("devices.view_device", "devices.view_deviceevent")


class CanPreviewGroups(HasPermissions):
    """A preview writes nothing: whoever may read groups and devices may preview a filter."""

    perms = ("devices.view_device", "devices.view_devicegroup")


class CanAssignDevices(HasPermissions):
    """Putting a device in a group (or out of it) changes the device."""

    perms = ("devices.view_devicegroup", "devices.view_device", "devices.change_device")
