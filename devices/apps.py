from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Device registry"

    def ready(self):
        from django.urls import path

        from devices import bulk, checks, credentials, hooks, live_events  # noqa: F401 (checks)
        from devices.consumers import DevicePageConsumer
        from devices.handlers import register_all
        from devices.models import Device
        from fleetportal import resumable, routing
        from fleetportal.bridge import coverage

        register_all()
        hooks.subscribe(hooks.DevicesTransitioned, credentials.revoke_when_decommissioned)
        hooks.subscribe(hooks.DevicesTransitioned, live_events.on_devices_transitioned)
        routing.add_websocket_routes(
            path("ws/devices/<uuid:pk>/", DevicePageConsumer.as_asgi(), name="ws-device")
        )
        resumable.register(bulk.RESUMABLE)
        # Partitioned bridges subscribe the explicit topics of these devices (fleetportal does
        # not import devices, so devices says which rows those are).
        coverage.set_device_source(lambda: Device.objects.in_service())
