"""The operators' admin for the registry. Every change goes through devices.services.

Built for a million devices: estimated counts past a limit (fleetportal.paginators), no facet
counts, filters that read their values from indexes, searches served by trigram indexes, and one
query per page for related rows.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from devices import admin_device_actions, device_page, groups, lifecycle, services
from devices.admin_device_list import DeviceListMixin
from devices.admin_filters import EventTypeFilter
from devices.choices import DeviceStatus
from devices.device_list import DEVICE_LIST, GROUP_PARAMETER
from devices.device_page import summarize
from devices.exceptions import IllegalTransition
from devices.group_filters import FilterError
from devices.models import Device, DeviceEvent, DeviceGroup, DeviceTypeGateway, SearchValues
from devices.pages import DEVICE_PAGE, GROUP_PAGE
from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin, ReadOnlyAdmin
from fleetportal.errors import DomainError
from fleetportal.forms import JSONTextField

# One admin action runs in one web request and one transaction; larger batches ("select all" on
# a big fleet) belong to a background job, so the admin refuses them instead of timing out.
ACTION_MAX_DEVICES = 10_000


def as_stored(model_admin, request, context, obj):
    """The object as stored, for the sections other apps add: after a refused post the form's
    instance holds the refused values (a group's bad filter would break its members' summary)."""
    if context["adminform"].form.errors:
        return model_admin.get_object(request, str(obj.pk)) or obj
    return obj


class DeviceActionForm(helpers.ActionForm):
    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "recorded in the timeline"}),
    )


class TransitionForm(forms.Form):
    """The device page's status form: offers the device's allowed moves; the service decides."""

    target = forms.ChoiceField(label="Move to", choices=DeviceStatus.choices)
    reason = forms.CharField(required=False, max_length=500)
    # The status the operator saw, so a move based on a stale page is refused (StatusConflict).
    current = forms.ChoiceField(choices=DeviceStatus.choices, widget=forms.HiddenInput)

    def __init__(self, *args, device: Device, **kwargs):
        super().__init__(*args, initial={"current": device.status}, **kwargs)
        self.fields["target"].widget.choices = [
            (status, DeviceStatus(status).label) for status in device.allowed_transitions()
        ]


@admin.register(Device)
class DeviceAdmin(DeviceListMixin, FleetModelAdmin):
    # Columns and filters: devices.admin_device_list (with what other apps add).
    list_select_related = ("group",)
    # Only orders an index can serve; sorting a million rows by name would take seconds.
    sortable_by = ("device", "seen", "created_at")
    ordering = ("-created_at",)
    # Searched by devices.device_list.search_condition (each part trigram-indexed).
    search_fields = ("device_id", "serial_number", "device_name")
    search_help_text = "Device ID, name, serial number, or a metadata or location value contains…"
    action_form = DeviceActionForm
    actions = ("to_provisioning", "to_active", "to_maintenance", "to_decommissioned")
    readonly_fields = ("device_id", "status", "last_seen", "created_at", "updated_at")
    fieldsets = (
        (
            None,
            {"fields": ("device_id", "device_name", "device_type", "status", "group", "gateway")},
        ),
        (
            "Hardware",
            {
                "fields": (
                    "manufacturer",
                    "model",
                    "serial_number",
                    "hardware_version",
                    "firmware_version",
                )
            },
        ),
        ("Connectivity", {"fields": ("last_seen", "last_ip_address", "location")}),
        ("Metadata", {"fields": ("metadata",)}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    add_fieldsets = (
        (None, {"fields": ("device_id", "device_name", "device_type", "group")}),
        fieldsets[1],
        ("Connectivity", {"fields": ("last_ip_address", "location")}),
        fieldsets[3],
    )

    # -- permissions --------------------------------------------------------------------------

    def has_change_status_permission(self, request) -> bool:
        return request.user.has_perm("devices.change_device_status")

    def has_change_permission(self, request, obj=None):
        # A decommissioned device keeps its history as it was: its page is read-only.
        if obj is not None and obj.is_decommissioned:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Decommissioning, not deletion, retires a device: its device_id stays reserved forever.
        return False

    # -- list ---------------------------------------------------------------------------------

    def get_queryset(self, request):
        # The online column and the other apps' columns in the page's own query.
        devices = super().get_queryset(request).with_online().alias(search_values=SearchValues())
        return DEVICE_LIST.annotate(devices)

    # -- add and change go through the services ----------------------------------------------

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj else self.add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "group":
            # Only static groups take members by hand (Device.clean refuses dynamic ones).
            kwargs["queryset"] = DeviceGroup.objects.filter(filters={})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "gateway" and formfield is not None:
            # A post without it (a script, a page from before gateways) keeps the gateway.
            formfield.required = False
        return formfield

    def save_model(self, request, obj, form, change):
        actor = actor_for_request(request)
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            if not changes.get("gateway", True):
                del changes["gateway"]
            services.update_device(obj, changes, actor=actor)
        else:
            obj.pk = services.register_device(form.cleaned_data, actor=actor).pk

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            # Races the form could not see: the ID taken meanwhile, the device decommissioned.
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if (
            obj is not None
            and obj.allowed_transitions()
            and self.has_change_status_permission(request)
        ):
            context["transition_form"] = TransitionForm(device=obj)
        if obj is not None:
            stored = as_stored(self, request, context, obj)
            # One page with tabs (devices.device_page): the sections of every app, each on its
            # tab; the device's own form stays on the overview.
            context["device_tabs"] = device_page.tabs(request, stored)
            context["page_links"] = DEVICE_PAGE.links(request, stored)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_object(self, request, object_id, from_field=None):
        # What the apps' sections need to know, asked in the device's own query.
        queryset = DEVICE_PAGE.annotate(self.get_queryset(request).select_related("group"))
        field = self.opts.pk if from_field is None else self.opts.get_field(from_field)
        try:
            return queryset.get(**{field.name: field.to_python(object_id)})
        except (Device.DoesNotExist, ValidationError, ValueError):
            return None

    # -- lifecycle ----------------------------------------------------------------------------

    @admin.action(
        permissions=["change_status"], description="Move selected devices to provisioning"
    )
    def to_provisioning(self, request, queryset):
        self._transition(request, queryset, DeviceStatus.PROVISIONING)

    @admin.action(permissions=["change_status"], description="Move selected devices to active")
    def to_active(self, request, queryset):
        self._transition(request, queryset, DeviceStatus.ACTIVE)

    @admin.action(permissions=["change_status"], description="Move selected devices to maintenance")
    def to_maintenance(self, request, queryset):
        self._transition(request, queryset, DeviceStatus.MAINTENANCE)

    @admin.action(permissions=["change_status"], description="Decommission selected devices")
    def to_decommissioned(self, request, queryset):
        self._transition(request, queryset, DeviceStatus.DECOMMISSIONED)

    def _transition(self, request, queryset, target: str) -> None:
        if queryset[: ACTION_MAX_DEVICES + 1].count() > ACTION_MAX_DEVICES:
            self.message_user(
                request,
                f"An action takes at most {ACTION_MAX_DEVICES:,} devices; narrow the list first.",
                messages.ERROR,
            )
            return
        moved, refused = services.transition_devices(
            queryset.select_related(None).only("pk"),
            target,
            actor=actor_for_request(request),
            reason=request.POST.get("reason", "")[:500],
        )
        if moved:
            self.message_user(
                request, f"Moved {len(moved)} device(s) to {target}.", messages.SUCCESS
            )
        for current, devices in _group_by_status(refused).items():
            error = IllegalTransition(current, target, lifecycle.allowed_targets(current))
            names = ", ".join(d.device_id for d in devices[:20]) + (
                " …" if len(devices) > 20 else ""
            )
            self.message_user(
                request, f"Not moved ({len(devices)}): {names}. {error.message}", messages.ERROR
            )

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(require_POST(partial(function, self)))

        return [
            path(
                "<path:object_id>/transition/",
                view(DeviceAdmin.transition_view),
                name="devices_device_transition",
            ),
            path(
                "<path:object_id>/credentials/issue/",
                view(admin_device_actions.issue),
                name="devices_device_issue_credential",
            ),
            path(
                "<path:object_id>/credentials/<str:certificate_id>/revoke/",
                view(admin_device_actions.revoke),
                name="devices_device_revoke_credential",
            ),
            *super().get_urls(),  # the list's own pages first (DeviceListMixin)
        ]

    def transition_view(self, request, object_id):
        device = self.get_object(request, unquote(object_id))
        if device is None:
            raise Http404("No such device.")
        if not self.has_change_status_permission(request):
            raise PermissionDenied
        form = TransitionForm(request.POST, device=device)
        if not form.is_valid():
            errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
            self.message_user(request, errors, messages.ERROR)
        else:
            try:
                services.transition_device(
                    device,
                    form.cleaned_data["target"],
                    actor=actor_for_request(request),
                    reason=form.cleaned_data["reason"],
                    expected=form.cleaned_data["current"],
                )
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                target = form.cleaned_data["target"]
                self.message_user(
                    request,
                    f"Device {device.device_id} is now {DeviceStatus(target).label.lower()}.",
                    messages.SUCCESS,
                )
        return HttpResponseRedirect(
            reverse("admin:devices_device_change", args=[device.pk]) + "#tab-overview"
        )


# A filter holds at most MAX_CONDITIONS short conditions; a longer text is not one being typed.
MAX_FILTER_TEXT = 64 * 1024


def typed_filter(text: str) -> dict:
    """The group form's filter text as a document, checked as the form's field checks it; an
    empty box is a static group, which has no preview."""
    if len(text) > MAX_FILTER_TEXT:
        raise FilterError([f"filters: longer than {MAX_FILTER_TEXT:,} characters"])
    try:
        document = JSONTextField(required=False).clean(text)
    except ValidationError as exc:
        raise FilterError([f"filters: {message}" for message in exc.messages]) from None
    if not document:
        raise FilterError(["No filter: the group is static and its members are assigned."])
    return document


def _group_by_status(devices: list[Device]) -> dict[str, list[Device]]:
    grouped: dict[str, list[Device]] = {}
    for device in devices:
        grouped.setdefault(device.status, []).append(device)
    return grouped


@admin.register(DeviceGroup)
class DeviceGroupAdmin(FleetModelAdmin):
    list_display = ("name", "kind", "members", "description", "created_at")
    search_fields = ("name",)
    ordering = ("name",)
    fields = ("name", "description", "filters", "priority", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at", "current_members")

    def get_fields(self, request, obj=None):
        return (*self.fields, "current_members") if obj else self.fields

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "priority":
            # A form posted without it (an older page, a script) keeps the model's default.
            kwargs["required"] = False
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            stored = as_stored(self, request, context, obj)
            context["page_sections"] = GROUP_PAGE.render_sections(request, stored)
            context["page_links"] = GROUP_PAGE.links(request, stored)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- changes go through the group service (devices.groups), which fires the group hooks ---

    def save_model(self, request, obj, form, change):
        # The form's instance holds the values to save (a field left out of the post keeps the
        # model's default there, while cleaned_data would say None).
        names = form.changed_data if change else form.cleaned_data
        values = {name: getattr(obj, name) for name in names if name in groups.EDITABLE_FIELDS}
        actor = actor_for_request(request)
        if change:
            groups.update_group(obj, values, actor=actor)
        else:
            obj.pk = groups.create_group(values, actor=actor).pk

    def delete_model(self, request, obj):
        groups.delete_group(obj, actor=actor_for_request(request))

    def delete_queryset(self, request, queryset):
        groups.delete_groups(queryset, actor=actor_for_request(request))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            # A race the form could not see: a device assigned while a filter was being added.
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.display(description="members now")
    def current_members(self, group):
        """The count (exact up to the list limit) and the newest matches; a dynamic group's
        filter runs here, on its own page, never per row of the list."""
        try:
            members = groups.preview_members(group.members())
        except FilterError as exc:
            return format_html("Invalid filter: {}", "; ".join(exc.messages))
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:devices_device_change", args=[d.pk]),
                    d.device_id,
                    d.device_type,
                    d.status,
                    d.firmware_version,
                )
                for d in members.sample
            ),
        )
        url = (
            reverse("admin:devices_device_changelist")
            + "?"
            + urlencode({GROUP_PARAMETER: group.pk})
        )
        return format_html(
            '<p class="group-member-count">{}{} device(s) — <a href="{}">list them</a></p>'
            '<table class="group-members"><thead><tr><th>device</th><th>type</th>'
            "<th>status</th><th>firmware</th></tr></thead><tbody>{}</tbody></table>",
            "about " if members.approximate else "",
            f"{members.count:,}",
            url,
            rows,
        )

    # -- the filter's preview while typing (templates/admin/devices/devicegroup/change_form.html)

    def get_urls(self):
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [
            path("preview/", preview, name="devices_devicegroup_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """POST {"filters": "<the text typed>"}: the count and sample, or the language's
        messages (400). Writes nothing; whoever may see groups and devices may ask."""
        if not (self.has_view_permission(request) and request.user.has_perm("devices.view_device")):
            raise PermissionDenied
        try:
            matches = groups.preview(typed_filter(request.POST.get("filters", "")))
        except FilterError as exc:
            return JsonResponse({"errors": exc.messages}, status=400)
        sample = [
            {
                "device_id": d.device_id,
                "url": reverse("admin:devices_device_change", args=[d.pk]),
                "device_type": d.device_type,
                "status": d.status,
                "firmware_version": d.firmware_version,
            }
            for d in matches.sample
        ]
        return JsonResponse(
            {"count": matches.count, "approximate": matches.approximate, "sample": sample}
        )

    def get_queryset(self, request):
        # A correlated subquery rather than JOIN + GROUP BY: PostgreSQL evaluates it only for the
        # groups on the page (an index-only scan of the group key's index each), and the paginator's
        # count does not drag a million device rows into its join.
        members = (
            Device.objects.filter(group=OuterRef("pk"))
            .order_by()
            .values("group")
            .annotate(count=Count("*"))
            .values("count")
        )
        return super().get_queryset(request).annotate(member_count=Coalesce(Subquery(members), 0))

    @admin.display(description="type")
    def kind(self, group):
        return "dynamic" if group.is_dynamic else "static"

    @admin.display(description="members", ordering="member_count")
    def members(self, group):
        # A dynamic group's members are computed from its filter, not assigned.
        return "—" if group.is_dynamic else group.member_count


@admin.register(DeviceTypeGateway)
class DeviceTypeGatewayAdmin(FleetModelAdmin):
    """Which gateway new devices of a type start on (devices registered without one)."""

    list_display = ("device_type", "gateway")
    search_fields = ("device_type",)


@admin.register(DeviceEvent)
class DeviceEventAdmin(ReadOnlyAdmin):
    """The fleet-wide timeline. Read-only: events are written by the services only."""

    list_display = ("created_at", "device", "event_type", "actor", "details")
    list_select_related = ("device",)
    list_filter = (EventTypeFilter,)
    # Prefix match on the device ID: served by the trigram index on UPPER(device_id).
    search_fields = ("^device__device_id",)
    search_help_text = "Device ID starts with…"
    sortable_by = ("created_at",)
    ordering = ("-created_at",)
    fields = ("device", "event_type", "actor", "created_at", "event_data")

    @admin.display(description="details")
    def details(self, event):
        return summarize(event.event_data)


# Identity and provisioning pages register themselves on import.
from devices import admin_bulk_actions, admin_credentials, admin_provisioning  # noqa: E402, F401

device_page.register()
