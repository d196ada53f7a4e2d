"""Admin pages for provisioning templates and bulk provisioning jobs.

Templates are validated by provisioning.template_errors (the API uses the same rules) and saved
through provisioning.save_template, which keeps the broker's claim ACL in step. A bulk job is
created by uploading a CSV on the add page; its page shows progress, bad rows by line and the
once-only bundle download.
"""

import io
import zipfile

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from devices import bulk, provisioning
from devices.admin_bulk_actions import LiveJobPage
from devices.api.provisioning import zip_response
from devices.choices import BulkJobStatus
from devices.models import BulkProvisioningJob, DeviceGroup, ProvisioningTemplate
from fleetportal.actors import actor_for_request
from fleetportal.errors import DomainError

ERRORS_SHOWN = 500


class ProvisioningTemplateForm(forms.ModelForm):
    pre_provisioning_hook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Pre-provisioning hook URL",
        help_text=ProvisioningTemplate._meta.get_field("pre_provisioning_hook_url").help_text,
    )

    class Meta:
        model = ProvisioningTemplate
        fields = [
            "name",
            "description",
            "enabled",
            "device_type",
            "group",
            "initial_status",
            "parameters",
            "device_id_template",
            "metadata_template",
            "device_configuration",
            "serial_number_parameter",
            "allowed_serial_numbers",
            "pre_provisioning_hook_url",
            "allow_create_keys",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "group" in self.fields:
            # Only static groups take members by hand; template_errors refuses dynamic ones.
            self.fields["group"].queryset = DeviceGroup.objects.filter(filters={})

    def _post_clean(self):
        super()._post_clean()
        for field, errors in provisioning.template_errors(self.instance).items():
            self.add_error(field if field in self.fields else None, errors)


@admin.register(ProvisioningTemplate)
class ProvisioningTemplateAdmin(admin.ModelAdmin):
    form = ProvisioningTemplateForm
    list_display = (
        "name",
        "enabled",
        "device_type",
        "group",
        "initial_status",
        "allow_create_keys",
        "updated_at",
    )
    list_select_related = ("group",)
    list_filter = ("enabled",)
    search_fields = ("name",)
    ordering = ("name",)
    actions = ("issue_claim_certificate",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled")}),
        (
            "Devices it registers",
            {
                "fields": (
                    "device_type",
                    "gateway",
                    "group",
                    "initial_status",
                    "parameters",
                    "device_id_template",
                    "metadata_template",
                    "device_configuration",
                )
            },
        ),
        (
            "Who may provision",
            {
                "fields": (
                    "serial_number_parameter",
                    "allowed_serial_numbers",
                    "pre_provisioning_hook_url",
                    "allow_create_keys",
                ),
                "description": "create/json sends a private key on a topic every holder of "
                "this template's claim certificate can read (device-protocol.md §7.9); it also "
                "needs FLEETPORTAL_CLAIM_CREATE_KEYS=true.",
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        provisioning.save_template(obj)

    def delete_model(self, request, obj):
        provisioning.delete_template(obj)

    def delete_queryset(self, request, queryset):
        for template in queryset:
            provisioning.delete_template(template)

    @admin.action(permissions=["change"], description="Issue a claim certificate (download)")
    def issue_claim_certificate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one template.", messages.ERROR)
            return None
        template = queryset.get()
        claim = provisioning.issue_claim_certificate(template, actor=actor_for_request(request))
        return claim_certificate_zip(template.name, claim)


def claim_certificate_zip(name: str, claim: provisioning.ClaimCertificate) -> HttpResponse:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        key = zipfile.ZipInfo(f"claim-{name}/claim.key", bulk.time_tuple())
        key.external_attr = 0o600 << 16
        archive.writestr(key, claim.key_pem)
        archive.writestr(f"claim-{name}/claim.pem", claim.cert_pem)
        archive.writestr(f"claim-{name}/ca-chain.pem", claim.chain_pem)
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="claim-{name}.zip"'
    response["Cache-Control"] = "no-store"  # a private key, handed out this once
    return response


class BulkUploadForm(forms.ModelForm):
    csv_file = forms.FileField(
        label="CSV file",
        required=False,
        help_text=f"Header row: {', '.join(bulk.COLUMNS)} ({' and '.join(bulk.REQUIRED_COLUMNS)} "
        f"required; group by name; metadata a JSON object; csr a PEM request). At most "
        f"{bulk.MAX_ROWS:,} devices.",
    )
    csv_text = forms.CharField(
        label="or paste the CSV", required=False, widget=forms.Textarea, strip=False
    )

    class Meta:
        model = BulkProvisioningJob
        fields = []

    def clean(self):
        upload, text = self.cleaned_data.get("csv_file"), self.cleaned_data.get("csv_text")
        if upload:
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError("The CSV must be UTF-8.") from None
        if not text:
            raise forms.ValidationError("Upload a CSV file or paste one.")
        try:
            bulk.check_csv(text.removeprefix("\ufeff"))
        except bulk.BulkError as exc:
            raise forms.ValidationError(exc.message) from None
        self.cleaned_data["csv"] = text
        return self.cleaned_data


@admin.register(BulkProvisioningJob)
class BulkProvisioningJobAdmin(LiveJobPage, admin.ModelAdmin):
    socket_prefix = "bulk-provisioning"
    list_display = (
        "created_at",
        "status",
        "progress",
        "succeeded_rows",
        "failed_rows",
        "created_by",
        "bundle",
    )
    list_filter = ("status",)
    ordering = ("-created_at",)
    readonly_fields = (
        "status",
        "progress",
        "total_rows",
        "succeeded_rows",
        "failed_rows",
        "bundle",
        "bad_rows",
        "error",
        "created_by",
        "created_at",
        "finished_at",
        "bundle_downloaded_at",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("csv_text", "device_ids")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BulkUploadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("csv_file", "csv_text") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False  # a job is read-only once uploaded; its page is a report

    def save_model(self, request, obj, form, change):
        job = bulk.start_bulk_job(form.cleaned_data["csv"], actor=actor_for_request(request))
        obj.pk = job.pk
        obj.refresh_from_db()

    @admin.display(description="progress")
    def progress(self, job):
        return f"{job.processed_rows:,} / {job.total_rows:,}"

    @admin.display(description="bad rows")
    def failed_rows(self, job):
        return job.processed_rows - job.succeeded_rows

    @admin.display(description="bad rows by line")
    def bad_rows(self, job):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td></tr>",
            (
                (
                    entry["line"],
                    "; ".join(f"{f}: {' '.join(m)}" for f, m in entry["errors"].items()),
                )
                for entry in job.row_errors[:ERRORS_SHOWN]
            ),
        )
        more = len(job.row_errors) - ERRORS_SHOWN
        return format_html(
            "<table><thead><tr><th>line</th><th>errors</th></tr></thead><tbody>{}</tbody>"
            "</table>{}",
            rows,
            f"… and {more} more (see the API)" if more > 0 else "",
        )

    @admin.display(description="credentials bundle")
    def bundle(self, job):
        if job.bundle_downloaded_at:
            return "downloaded"
        if job.status != BulkJobStatus.FINISHED:
            return "when finished"
        url = reverse("admin:devices_bulkprovisioningjob_bundle", args=[job.pk])
        return format_html(
            '<a href="{}" data-once="1">Download bundle (once: the keys are not kept)</a>', url
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.bundle_view)
        return [
            path("<path:object_id>/bundle/", view, name="devices_bulkprovisioningjob_bundle"),
            *super().get_urls(),
        ]

    def bundle_view(self, request, object_id):
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404("No such bulk job.")
        if not request.user.has_perm("devices.add_bulkprovisioningjob"):
            raise PermissionDenied
        try:
            chunks = bulk.stream_bundle(job, actor=actor_for_request(request))
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect("admin:devices_bulkprovisioningjob_change", job.pk)
        return zip_response(request, chunks, f"bulk-{job.pk}.zip")
