"""Admin of presence (read-only: derived) and device type health (editable)."""

from django.contrib import admin

from fleetportal.admin_base import FleetModelAdmin, ReadOnlyAdmin
from monitoring.models.presence import DeviceTypeHealth, Presence


@admin.register(Presence)
class PresenceAdmin(ReadOnlyAdmin):
    list_display = ("device", "online", "reason", "changed_at", "connection")
    list_select_related = ("device",)
    list_filter = ("online",)
    search_fields = ("device__device_id",)


@admin.register(DeviceTypeHealth)
class DeviceTypeHealthAdmin(FleetModelAdmin):
    list_display = ("device_type", "heartbeat_seconds", "battery_key", "signal_key")
    search_fields = ("device_type",)
