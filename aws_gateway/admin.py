"""The AWS gateway in the console: each device's thing sync state (with "Sync again now"), the
fleet imports from AWS (start one, follow its counters, resume one that stopped), and the state
part's rows — the links' health, shadow changes on their way, AWS jobs — read-only, written by
its services."""

from django.contrib import admin, messages
from django.db import transaction

from aws_gateway import importer, sync_state
from aws_gateway.models import AwsJob, FleetImport, LinkStatus, ShadowPush, ThingSync
from devices.choices import BulkJobStatus
from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin, ReadOnlyAdmin
from fleetportal.console import status_column, time_column


@admin.register(ThingSync)
class ThingSyncAdmin(ReadOnlyAdmin):
    list_display = (
        "device",
        status_column("state"),
        "thing_name",
        "attempts",
        "last_error",
        time_column("synced_at", "last synced"),
        time_column("next_attempt_at", "next attempt"),
    )
    list_filter = ("state",)
    list_select_related = ("device",)
    search_fields = ("^device__device_id",)
    ordering = ("-updated_at",)
    actions = ("sync_again",)
    fields = (
        "device",
        "state",
        "thing_name",
        "thing_arn",
        "thing_version",
        "attempts",
        "next_attempt_at",
        "last_error",
        "last_error_at",
        "note",
        "synced_at",
        "updated_at",
    )

    @admin.action(description="Sync again now", permissions=["sync"])
    def sync_again(self, request, queryset):
        with transaction.atomic():
            marked = sync_state.mark_pending(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{len(marked)} device(s) will sync with AWS now.")

    def has_sync_permission(self, request) -> bool:
        return request.user.has_perm("aws_gateway.change_thingsync")


@admin.register(FleetImport)
class FleetImportAdmin(FleetModelAdmin):
    list_display = (
        "id",
        status_column("status"),
        "things_seen",
        "devices_created",
        "devices_updated",
        "certificates_imported",
        "shadows_imported",
        time_column("created_at", "started"),
    )
    list_filter = ("status",)
    actions = ("resume",)
    counters = (
        "status",
        "pages",
        "things_seen",
        "devices_created",
        "devices_updated",
        "groups_created",
        "certificates_imported",
        "shadows_imported",
        "skipped",
        "error",
        "created_by",
        "created_at",
        "finished_at",
    )

    def get_fields(self, request, obj=None):
        options = ("with_certificates", "with_shadows")
        return (*options, *self.counters) if obj else options

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else ()

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        obj.created_by = actor_for_request(request)
        obj.save()
        importer.queue(obj)

    @admin.action(description="Resume from where it stopped", permissions=["add"])
    def resume(self, request, queryset):
        stopped = queryset.exclude(status=BulkJobStatus.FINISHED)
        for job in stopped:
            importer.queue(job)
        self.message_user(request, f"{len(stopped)} import(s) resumed.", messages.INFO)


@admin.register(LinkStatus)
class LinkStatusAdmin(ReadOnlyAdmin):
    list_display = ("part", "healthy", "failures", "last_error", "last_error_at", "last_ok_at")


@admin.register(ShadowPush)
class ShadowPushAdmin(ReadOnlyAdmin):
    list_display = (
        "thing_name",
        "shadow_name",
        "deletion",
        "created_at",
        "attempts",
        "next_attempt_at",
    )
    list_select_related = ()


@admin.register(AwsJob)
class AwsJobAdmin(ReadOnlyAdmin):
    list_display = ("aws_job_id", "job", "created_on_aws_at", "reconciled_at", "last_error")
    list_select_related = ("job",)
