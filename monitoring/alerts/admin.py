"""Admin pages of the alerts part: rules (edited by operators), alerts (read-only, with the
acknowledge action) and webhook deliveries (read-only: attempts, last status and error)."""

from django.contrib import admin, messages
from django.db import models

from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin, ReadOnlyAdmin
from fleetportal.console import status_column, time_column
from monitoring.alerts import services
from monitoring.models import Alert, AlertRule, WebhookDelivery


@admin.register(AlertRule)
class AlertRuleAdmin(FleetModelAdmin):
    list_display = ("name", "kind", "severity", "for_seconds", "enabled", "webhook_url")
    list_filter = ("kind", "severity", "enabled")
    search_fields = ("name",)
    readonly_fields = ("created_by", "created_at")
    formfield_overrides = {
        **FleetModelAdmin.formfield_overrides,
        models.URLField: {"assume_scheme": "https"},
    }
    fieldsets = (
        (None, {"fields": ("name", "description", "kind", "severity", "enabled")}),
        ("Filter rules", {"fields": ("filter",)}),
        ("Telemetry rules", {"fields": ("metric", "op", "threshold", "window_seconds")}),
        (None, {"fields": ("for_seconds", "webhook_url", "created_by", "created_at")}),
    )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = actor_for_request(request)
        super().save_model(request, obj, form, change)


class OpenFilter(admin.SimpleListFilter):
    """Open (not resolved) or resolved: the dashboard's alert counts link to ?open=yes
    (the partial indexes on open alerts serve it)."""

    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "rule",
        "device",
        status_column("severity"),
        time_column("raised_at"),
        time_column("resolved_at"),
        time_column("acknowledged_at"),
        "acknowledged_by",
    )
    list_filter = (OpenFilter, "severity", "rule")
    list_select_related = ("rule", "device")
    raw_id_fields = ("device",)
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge the selected open alerts", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        count = services.acknowledge_many(
            queryset.values_list("pk", flat=True), actor_for_request(request)
        )
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)

    def has_acknowledge_permission(self, request):
        return request.user.has_perm("monitoring.acknowledge_alert")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "rule",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event")
    list_select_related = ("rule",)
    raw_id_fields = ("alert",)
