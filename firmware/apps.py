from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"

    def ready(self):
        from firmware import handlers

        handlers.register()
