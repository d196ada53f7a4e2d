"""Rollouts in the admin: a read-only list with status badges and a link to the REST detail;
waves and the timeline inline. Rollouts are created and run through the API (the service's
rules); nothing here edits a rollout."""

from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html

from firmware import rollout_pages
from firmware.rollouts.models import Rollout, RolloutEvent, Wave
from fleetportal.admin_base import ReadOnlyAdmin
from fleetportal.console import status_column, time_column


class WaveInline(admin.TabularInline):
    model = Wave
    fields = ["number", "selector", "count", "percent", "gate", "status", "device_count"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class EventInline(WaveInline):
    model = RolloutEvent
    fields = ["at", "actor", "kind", "from_status", "to_status", "wave_number", "reason"]
    readonly_fields = fields


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyAdmin):
    list_display = [
        "rollout_id", status_column("status"), "kind", "firmware", "created_by",
        time_column("created_at"), "page", "api",
    ]  # fmt: skip
    list_filter = ["status", "kind"]
    search_fields = ["rollout_id"]
    list_select_related = ["firmware"]
    inlines = [WaveInline, EventInline]

    def get_urls(self):
        wrap = self.admin_site.admin_view
        page = "<str:rollout_id>/page/"
        return [
            path(page, wrap(rollout_pages.rollout_page), name="firmware_rollout_page"),
            path(f"{page}parts/", wrap(rollout_pages.rollout_parts), name="firmware_rollout_parts"),
            path(
                f"{page}waves/<int:number>/approve/",
                wrap(rollout_pages.approve_gate),
                name="firmware_rollout_approve_gate",
            ),
            path(
                f"{page}<str:action>/",
                wrap(rollout_pages.rollout_action),
                name="firmware_rollout_action",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="page")
    def page(self, rollout: Rollout) -> str:
        url = reverse("admin:firmware_rollout_page", args=[rollout.rollout_id])
        return format_html('<a href="{}">watch</a>', url)

    @admin.display(description="REST")
    def api(self, rollout: Rollout) -> str:
        url = reverse("rollout-detail", args=[rollout.rollout_id])
        return format_html('<a href="{}">detail</a>', url)
