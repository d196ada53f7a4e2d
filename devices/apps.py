from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Device registry"

    def ready(self):
        from devices import (  # noqa: F401 (checks: deploy checks)
            bulk,
            bulk_actions,
            checks,
            consumers,
            credentials,
            hooks,
            live_events,
        )
        from devices.handlers import register_all
        from devices.models import Device
        from fleetportal import resumable, routing
        from fleetportal.bridge import coverage

        register_all()
        hooks.subscribe(hooks.DevicesTransitioned, credentials.revoke_when_decommissioned)
        hooks.subscribe(hooks.DevicesTransitioned, live_events.on_devices_transitioned)
        resumable.register(bulk.RESUMABLE)
        resumable.register(bulk_actions.RESUMABLE)
        routing.add_websocket_routes(*consumers.ROUTES)
        # Partitioned bridges subscribe the explicit topics of these devices (fleetportal does
        # not import devices, so devices says which rows those are).
        coverage.set_device_source(lambda: Device.objects.in_service())
