from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"

    def ready(self):
        from devices import hooks
        from firmware import engine
        from shadows import writes

        hooks.subscribe(hooks.DevicesTransitioned, engine.on_devices_transitioned)
        hooks.subscribe(hooks.GroupMembershipChanged, engine.on_membership_changed)
        # "" is the classic shadow, where devices report `firmware_version` (issue 12 point 7).
        writes.on_updates("", engine.on_reported_versions)
