from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"

    def ready(self):
        from django.urls import path as route

        from devices import hooks
        from firmware import device_list, device_page, documents, engine, handlers, jobs
        from firmware.consumers import RolloutConsumer
        from firmware.protocol import firmware_runs
        from fleetportal import request_limits, routing
        from shadows import writes

        routing.add_websocket_routes(
            route("ws/rollouts/<str:rollout_id>/", RolloutConsumer.as_asgi(), name="ws-rollout")
        )
        handlers.register()
        device_page.register()
        device_list.register()
        hooks.subscribe(hooks.DevicesTransitioned, engine.on_devices_transitioned)
        hooks.subscribe(hooks.GroupMembershipChanged, engine.on_membership_changed)
        # "" is the classic shadow, where devices report `firmware_version` (issue 12 point 7).
        writes.on_updates("", engine.on_reported_versions)
        firmware_runs.confirm_with(engine.reported_succeeded)
        # Firmware jobs hand each device a download URL signed for it when it gets the job.
        documents.document_renderer = jobs.delivered_document
        documents.document_per_device = jobs.signs_per_device

        # Firmware uploads may be larger than any other request (FIRMWARE_MAX_UPLOAD_BYTES).
        for path in (r"/api/v1/firmware/", r"/admin/firmware/firmwareversion/add/"):
            request_limits.allow_larger_bodies(path, "FIRMWARE_MAX_UPLOAD_BYTES")
