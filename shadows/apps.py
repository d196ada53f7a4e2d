from django.apps import AppConfig


class ShadowsConfig(AppConfig):
    name = "shadows"
    verbose_name = "Device shadows"

    def ready(self):
        from shadows import handlers

        handlers.register()
