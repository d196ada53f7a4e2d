"""The device and group pages' extension points (fleetportal.pages): apps above devices add
sections, links and annotations here instead of subclassing and re-registering devices.admin."""

from fleetportal.pages import PageExtensions

DEVICE_PAGE = PageExtensions("device")
GROUP_PAGE = PageExtensions("group")
