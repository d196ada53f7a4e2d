from django.apps import AppConfig


class ShadowsConfig(AppConfig):
    name = "shadows"
    verbose_name = "Device shadows"

    def ready(self):
        from devices import hooks
        from devices.group_filters import register_field_family
        from fleetportal import routing
        from shadows import consumers, device_list, device_page, group_fields, handlers, writes
        from shadows.configuration import CONFIG_SHADOW
        from shadows.configuration import services as configuration

        handlers.register()
        routing.add_websocket_routes(*consumers.ROUTES)
        device_list.register()
        device_page.register()
        register_field_family("reported", group_fields.reported)
        writes.on_updates(CONFIG_SHADOW, configuration.on_config_reports)
        # A configured group's devices are reconciled when the group service changes the group.
        hooks.subscribe(hooks.GroupSaved, configuration.on_group_saved)
        hooks.subscribe(hooks.GroupDeleted, configuration.on_group_deleted)
        hooks.subscribe(hooks.GroupMembershipChanged, configuration.on_membership_changed)
