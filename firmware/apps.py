from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"

    def ready(self):
        from firmware import handlers
        from fleetportal import request_limits

        handlers.register()

        # Firmware uploads may be larger than any other request (FIRMWARE_MAX_UPLOAD_BYTES).
        for path in (r"/api/v1/firmware/", r"/admin/firmware/firmwareversion/add/"):
            request_limits.allow_larger_bodies(path, "FIRMWARE_MAX_UPLOAD_BYTES")
