from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Device registry"

    def ready(self):
        from devices import bulk, checks  # noqa: F401 (checks registers the deployment checks)
        from devices.choices import DeviceStatus
        from devices.handlers import register_all
        from devices.models import Device
        from fleetportal import resumable
        from fleetportal.bridge import coverage

        register_all()
        resumable.register(bulk.RESUMABLE)
        # Partitioned bridges subscribe the explicit topics of these devices (fleetportal does
        # not import devices, so devices says which rows those are).
        coverage.set_device_source(
            lambda: Device.objects.exclude(status=DeviceStatus.DECOMMISSIONED)
        )
