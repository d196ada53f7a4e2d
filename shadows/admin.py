"""The operators' shadow pages: every shadow of the fleet, and one shadow's desired / reported /
delta side by side with a form to edit desired and its recent history.

Desired state changes go through shadows.services.set_desired with the version the page showed,
so an edit based on a stale page is refused (VersionConflict) instead of overwriting a newer one.
The device page links here by URL (?device__device_id=…): devices never import shadows.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin
from shadows import document, services
from shadows.configuration import CONFIG_SHADOW
from shadows.document import ShadowError, VersionConflict
from shadows.models import Shadow

HISTORY_LENGTH = 50
SAVED, CONFLICT, REFUSED = "saved", "conflict", "refused"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def compact(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


class DesiredForm(forms.Form):
    desired = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16, "cols": 60, "class": "vLargeTextField"}),
        required=False,
        help_text="The whole desired state as a JSON object: keys you remove are deleted.",
    )
    # The version the operator saw: an edit of a page the shadow has moved on from is refused.
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    def clean_desired(self) -> dict:
        text = self.cleaned_data["desired"].strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"Invalid JSON: {error}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Desired state must be a JSON object.")
        return value


def history_rows(entries) -> list[dict]:
    """A shadow's history entries as its history table shows them (shadow_history_table.html)."""
    return [
        {
            "version": entry.version,
            "operation": entry.get_operation_display(),
            "actor": entry.actor,
            "created_at": entry.created_at,
            "change": compact(entry.change),
        }
        for entry in entries
    ]


@admin.register(Shadow)
class ShadowAdmin(FleetModelAdmin):
    list_display = ("device", "shadow_name", "version", "live", "updated_at")
    list_select_related = ("device",)
    # Served by the unique (device, name) index; sorting by anything else would scan the table.
    ordering = ("device_id", "name")
    sortable_by = ()
    search_fields = ("^device__device_id",)
    search_help_text = "Device ID starts with…"
    change_page_template = "admin/shadows/shadow/shadow_page.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("device")

    def lookup_allowed(self, lookup, value, request=None):
        # The device page's link: /admin/shadows/shadow/?device__device_id=<id>.
        return lookup == "device__device_id" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="shadow", ordering="name")
    def shadow_name(self, shadow: Shadow) -> str:
        return shadow.name or "(classic)"

    # Shadows come from updates and go with delete requests: nobody adds or deletes rows here.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # -- the shadow page --------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        shadow = self.get_object(request, unquote(object_id))
        if shadow is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, shadow):
            raise PermissionDenied
        # The `config` shadow's desired state is the configuration's to write (its layered
        # values); an edit here would be overwritten by the next push.
        can_edit = self.has_change_permission(request, shadow) and shadow.name != CONFIG_SHADOW
        if request.method == "POST":
            if not can_edit:
                raise PermissionDenied
            form = DesiredForm(request.POST)
            outcome = self._save_desired(request, shadow, form)
            if outcome == SAVED:
                return HttpResponseRedirect(request.get_full_path())
            if outcome == CONFLICT:
                # Show what the shadow holds now; the operator's text would overwrite it blindly.
                shadow.refresh_from_db()
                form = None
        else:
            form = None
        if form is None:
            form = DesiredForm(
                initial={"desired": pretty(shadow.desired_state), "version": shadow.version}
            )
        return self._render(request, shadow, form if can_edit else None, extra_context)

    def _save_desired(self, request, shadow: Shadow, form: DesiredForm) -> str:
        """Apply the form through the service: SAVED, or CONFLICT / REFUSED, the reason shown."""
        if not form.is_valid():
            for errors in form.errors.values():
                self.message_user(request, " ".join(errors), messages.ERROR)
            return REFUSED
        desired, seen = form.cleaned_data["desired"], form.cleaned_data["version"]
        patch = document.merge_patch_between(shadow.desired_state, desired)
        try:
            if seen != shadow.version:
                raise VersionConflict(expected=seen, current=shadow.version)
            if not patch and shadow.live:
                self.message_user(request, "Desired state unchanged.", messages.INFO)
                return SAVED
            result = services.set_desired(
                shadow.device,
                shadow.name,
                patch,
                # A deleted shadow restarts from a version the service decides (§1.1).
                expected_version=seen if shadow.live else None,
                actor=actor_for_request(request),
            )
        except VersionConflict:
            self.message_user(
                request,
                f"Version conflict: the shadow changed since you loaded version {seen}; "
                "review the current state and edit again.",
                messages.ERROR,
            )
            return CONFLICT
        except ShadowError as error:
            self.message_user(request, f"Refused: {error.message}", messages.ERROR)
            return REFUSED
        self.message_user(
            request, f"Desired state saved as version {result.shadow.version}.", messages.SUCCESS
        )
        return SAVED

    def _render(self, request, shadow: Shadow, form: DesiredForm | None, extra_context):
        history = shadow.history.order_by("-version", "-id")[:HISTORY_LENGTH]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Shadow {shadow}",
            "subtitle": None,
            "original": shadow,
            "shadow": shadow,
            "desired": pretty(shadow.desired_state),
            "reported": pretty(shadow.reported_state),
            "delta": pretty(services.delta_of(shadow) if shadow.live else {}),
            "form": form,
            "history": history_rows(history),
            "history_length": HISTORY_LENGTH,
            "device_url": reverse("admin:devices_device_change", args=[shadow.device.pk]),
            "owned_by_configuration": shadow.name == CONFIG_SHADOW,
            "config_values_url": reverse("admin:shadows_configvalue_changelist")
            + f"?device={shadow.device.pk}",
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_page_template, context)


# The configuration pages, and the device and group pages extended with configuration.
from shadows import admin_config  # noqa: E402, F401
