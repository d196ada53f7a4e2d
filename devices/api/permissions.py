"""The registry's own permission rules; the shared bases are in fleetportal.api.permissions."""

from fleetportal.api.permissions import HasPermissions


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
