from django.apps import AppConfig


class ShadowsConfig(AppConfig):
    name = "shadows"
    verbose_name = "Device shadows"

    def ready(self):
        from devices.group_filters import register_field_family
        from shadows import group_fields, handlers

        handlers.register()
        register_field_family("reported", group_fields.reported)
