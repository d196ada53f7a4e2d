"""The bulk actions' pages: the list of jobs and one job's progress, live (devices.consumers).

Jobs start from the device list (devices.admin_device_list); here they are only read.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from devices.choices import BulkActionKind, DeviceStatus
from devices.models import BulkDeviceAction, DeviceGroup
from fleetportal import console
from fleetportal.admin_base import ReadOnlyAdmin


class LiveJobPage:
    """A job's page that updates itself while the job runs (devices.consumers)."""

    change_form_template = "admin/devices/job_change_form.html"
    socket_prefix = ""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        live = {"live_socket_path": f"/ws/devices/{self.socket_prefix}/{object_id}/"}
        return super().change_view(request, object_id, form_url, {**live, **(extra_context or {})})


@admin.register(BulkDeviceAction)
class BulkDeviceActionAdmin(LiveJobPage, ReadOnlyAdmin):
    socket_prefix = "bulk-actions"
    list_display = ("created_at", "what", "state", "progress", "created_by")
    list_filter = ("status",)
    ordering = ("-created_at",)
    fields = (
        "what",
        "state",
        "progress",
        "refused",
        "refusals_table",
        "devices",
        "reason",
        "error",
        "created_by",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "devices.view_device"
        )

    @admin.display(description="action")
    def what(self, job):
        if job.action == BulkActionKind.TRANSITION:
            return f"Move to {DeviceStatus(job.target).label.lower()}"
        name = DeviceGroup.objects.filter(pk=job.target).values_list("name", flat=True).first()
        return f"Add to group {name or '(deleted)'}"

    @admin.display(description="status")
    def state(self, job):
        return console.badge(job.status, job.get_status_display())

    @admin.display(description="progress")
    def progress(self, job):
        return format_html(
            '<progress class="job-progress" max="100" value="{}"></progress> '
            '<span class="job-counts">{} / {} devices, {} done</span>',
            job.percent,
            f"{job.processed:,}",
            f"{job.total:,}",
            f"{job.succeeded:,}",
        )

    @admin.display(description="refused devices (first 50)")
    def refusals_table(self, job):
        if not job.refusals:
            return "none"
        return format_html(
            "<table><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td></tr>",
                ((r["device_id"], r["message"]) for r in job.refusals),
            ),
        )

    @admin.display(description="devices")
    def devices(self, job):
        url = reverse("admin:devices_device_changelist") + "?" + urlencode(job.params)
        return format_html(
            '<a href="{}">the filtered list</a> <code>{}</code>', url, urlencode(job.params)
        )
