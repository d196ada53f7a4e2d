"""Admin pages of the firmware catalog: upload (a file with a progress bar, or a URL with its
size and SHA-256), versions by device type with the latest marked, the signed manifest shown.

Every write goes through firmware.catalog, so the admin refuses what the API refuses. The
admin's history records who added, changed (release notes only) or deleted each version.
"""

import json

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from firmware import catalog, downloads
from firmware.models import FirmwareVersion
from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin


class FirmwareUploadForm(forms.ModelForm):
    """The add form: the catalog service validates, stores and signs during the form's clean,
    so its refusals appear on the field they name."""

    file = forms.FileField(required=False, help_text="The image; or give a file URL instead.")
    file_url = forms.URLField(
        required=False, max_length=2000, assume_scheme="https", help_text="When hosted elsewhere."
    )
    actor = "system"  # set per request by FirmwareVersionAdmin.get_form

    class Meta:
        model = FirmwareVersion
        fields = [
            "device_type",
            "version",
            "security_version",
            "hardware_versions",
            "release_notes",
            "file_url",
            "file_size",
            "checksum",
        ]
        help_texts = {
            "file_size": "With a file URL only: its size in bytes.",
            "checksum": "SHA-256 in hex. Required with a file URL; checked against an upload.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file_size"].required = False
        self.fields["checksum"].required = False

    def _post_clean(self):
        if self.errors:
            return
        data = self.cleaned_data
        artifact = catalog.Artifact(
            file=data.get("file"),
            file_url=data.get("file_url") or "",
            file_size=data.get("file_size"),
            checksum=data.get("checksum") or "",
        )
        try:
            self.instance = catalog.add_version(
                device_type=data["device_type"],
                version=data["version"],
                artifact=artifact,
                actor=self.actor,
                security_version=data.get("security_version") or 0,
                hardware_versions=data.get("hardware_versions") or [],
                release_notes=data.get("release_notes") or "",
            )
        except catalog.CatalogRefused as refusal:
            self.add_error(refusal.field if refusal.field in self.fields else None, refusal.message)
        except catalog.SigningUnavailable as problem:
            self.add_error(None, problem.message)


ADD_FIELDSETS = [
    (None, {"fields": ["device_type", "version", "security_version", "hardware_versions"]}),
    ("Artifact", {"fields": ["file", "file_url", "file_size", "checksum"]}),
    (None, {"fields": ["release_notes"]}),
]
CHANGE_FIELDSETS = [
    (
        None,
        {
            "fields": [
                "device_type",
                "version",
                "security_version",
                "hardware_versions",
                "latest",
                "created_at",
                "created_by",
            ]
        },
    ),
    ("Artifact", {"fields": ["stored_as", "file_url", "file_size", "checksum", "download"]}),
    (
        "Signature",
        {"fields": ["manifest_json", "signed_text", "manifest_signature", "signing_key_id"]},
    ),
    (None, {"fields": ["release_notes"]}),
]


class FirmwareVersionAdmin(FleetModelAdmin):
    list_display = [
        "device_type",
        "version",
        "latest",
        "security_version",
        "file_size",
        "created_at",
        "created_by",
    ]
    list_display_links = ["version"]
    list_filter = ["is_latest", "device_type"]
    search_fields = ["device_type", "version"]

    class Media:
        js = ["firmware/upload_progress.js"]

    def get_fieldsets(self, request, obj=None):
        return ADD_FIELDSETS if obj is None else CHANGE_FIELDSETS

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f for fields in CHANGE_FIELDSETS for f in fields[1]["fields"]][:-1]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = FirmwareUploadForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = actor_for_request(request)
        return form

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # "Run as a job" (templates/admin/firmware/firmwareversion/change_form.html): the job
        # form with this version chosen, for those who may run jobs.
        if request.user.has_perm("firmware.add_job"):
            url = reverse("admin:firmware_job_add") + "?" + urlencode({"firmware": object_id})
            extra_context = {"run_as_job_url": url, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:  # only the release notes are editable: the rest is signed
            obj.save(update_fields=["release_notes"])
        # An addition was made by the catalog service while the form was cleaned.

    def delete_model(self, request, obj):
        catalog.delete_version(obj)

    def delete_queryset(self, request, queryset):
        for firmware in queryset:
            catalog.delete_version(firmware)

    @admin.display(description="latest", ordering="is_latest")
    def latest(self, obj):
        return format_html("<strong>{}</strong>", "latest") if obj.is_latest else ""

    @admin.display(description="stored as")
    def stored_as(self, obj):
        return obj.artifact.name or "(hosted at the file URL)"

    @admin.display(description="download (signed URL)")
    def download(self, obj):
        url = downloads.signed_url(obj)
        return format_html('<a href="{}">{}</a>', url, "download") if url else ""

    @admin.display(description="manifest")
    def manifest_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.manifest, indent=2, sort_keys=True))

    @admin.display(description="signed text (canonical JSON)")
    def signed_text(self, obj):
        return format_html("<code>{}</code>", catalog.signed_manifest(obj))
