"""The AWS gateway's rows in the console: read-only, written by its services."""

from django.contrib import admin

from aws_gateway.models import AwsJob, LinkStatus, ShadowPush
from fleetportal.admin_base import ReadOnlyAdmin


@admin.register(LinkStatus)
class LinkStatusAdmin(ReadOnlyAdmin):
    list_display = ("part", "healthy", "failures", "last_error", "last_error_at", "last_ok_at")


@admin.register(ShadowPush)
class ShadowPushAdmin(ReadOnlyAdmin):
    list_display = ("thing_name", "shadow_name", "created_at", "attempts", "next_attempt_at")
    list_select_related = ()


@admin.register(AwsJob)
class AwsJobAdmin(ReadOnlyAdmin):
    list_display = ("aws_job_id", "job", "created_on_aws_at", "reconciled_at", "last_error")
    list_select_related = ("job",)
