from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Device registry"

    def ready(self):
        from devices.handlers import register_all

        register_all()
