from django.apps import AppConfig
from django.db.models.signals import post_save, pre_delete


class ShadowsConfig(AppConfig):
    name = "shadows"
    verbose_name = "Device shadows"

    def ready(self):
        from devices.group_filters import register_field_family
        from devices.models import DeviceGroup
        from shadows import group_fields, handlers, writes
        from shadows.configuration import CONFIG_SHADOW
        from shadows.configuration import services as configuration

        handlers.register()
        register_field_family("reported", group_fields.reported)
        writes.on_updates(CONFIG_SHADOW, configuration.on_config_reports)
        post_save.connect(_group_saved, sender=DeviceGroup, dispatch_uid="config-group-saved")
        pre_delete.connect(_group_deleted, sender=DeviceGroup, dispatch_uid="config-group-deleted")


def _group_saved(sender, instance, created, raw=False, **kwargs):
    from shadows.configuration import services as configuration

    if not created and not raw:
        configuration.group_saved(instance)


def _group_deleted(sender, instance, **kwargs):
    from shadows.configuration import services as configuration

    configuration.group_deleted(instance)
