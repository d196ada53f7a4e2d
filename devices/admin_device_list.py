"""The device list page (the changelist of devices.admin.DeviceAdmin): its columns and sidebar
filters from devices.device_list, search in metadata and location values, and the pages that act
on the current filter — CSV export, "save as a dynamic group", bulk actions as Celery jobs, and
the entries other apps register for the filtered set (firmware's "Run a job on these devices").

Every one of them reads the list's query string through devices.device_list, so the rows an
operator sees are the rows exported, saved or acted on.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from devices import bulk_actions, csv_export, device_list, groups
from devices.choices import BulkActionKind, DeviceStatus
from devices.device_list import DEVICE_LIST, BadListFilter, ListFilter
from devices.group_filters import FilterError
from devices.models import DeviceGroup
from fleetportal import console, rate_limits, streaming
from fleetportal.actors import actor_for_request
from fleetportal.errors import DomainError

EXPORT_LIMIT = "device-export-user"


def sidebar_filter(spec: ListFilter) -> type[admin.SimpleListFilter]:
    """A Django list filter over one devices.device_list filter."""

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(spec.condition(self.value()))
        except BadListFilter as exc:
            raise IncorrectLookupParameters(exc) from exc

    return type(
        f"{spec.parameter.title().replace('_', '')}Filter",
        (admin.SimpleListFilter,),
        {
            "title": spec.title,
            "parameter_name": spec.parameter,
            "lookups": lambda self, request, model_admin: spec.choices(),
            "queryset": queryset,
            # Applied even when it lists no values (no groups yet; a value typed into a URL).
            "has_output": lambda self: True,
        },
    )


class SaveAsGroupForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class BulkActionForm(forms.Form):
    """What to do with every device of the filter: one choice, "status:<s>" or "group:<id>"."""

    choice = forms.ChoiceField(label="Action")
    reason = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "reason (recorded in the timeline)"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        options: list[tuple[str, str]] = []
        if user.has_perm("devices.change_device_status"):
            options += [(f"status:{s.value}", f"Move to {s.label.lower()}") for s in DeviceStatus]
        if user.has_perm("devices.change_device"):
            static = DeviceGroup.objects.filter(filters={}).order_by("name")[:200]
            options += [(f"group:{g.pk}", f"Add to group {g.name}") for g in static]
        self.fields["choice"].choices = options

    def action(self) -> tuple[str, str]:
        kind, _, target = self.cleaned_data["choice"].partition(":")
        return (
            BulkActionKind.TRANSITION if kind == "status" else BulkActionKind.ADD_TO_GROUP
        ), target


class DeviceListMixin:
    """The list parts of DeviceAdmin."""

    list_display_links = ("device",)

    # -- columns -----------------------------------------------------------------------------

    def get_list_display(self, request):
        own = ("device", "kind", "status_badge", "connectivity", "firmware", "group")
        added = tuple(self._column(c) for c in DEVICE_LIST.ordered_columns())
        return (*own, "seen", *added)

    def _column(self, column):
        def cell(device):
            return column.render(device)

        cell.short_description = column.label  # type: ignore[attr-defined]
        cell.__name__ = column.name
        return cell

    @admin.display(description="device", ordering="device_id")
    def device(self, device):
        if device.device_name:
            return format_html(
                '{}<br><span class="device-name">{}</span>', device.device_id, device.device_name
            )
        return device.device_id

    # Short headers: the list must fit beside the navigation and the filters at 1366 px.
    @admin.display(description="type")
    def kind(self, device):
        return device.device_type

    @admin.display(description="firmware")
    def firmware(self, device):
        return device.firmware_version or "—"

    @admin.display(description="status")
    def status_badge(self, device):
        return console.badge(device.status, device.get_status_display())

    @admin.display(description="online")
    def connectivity(self, device):
        return console.badge(
            *(("online", "Online") if device.is_online else ("offline", "Offline"))
        )

    @admin.display(description="last seen", ordering="last_seen")
    def seen(self, device):
        return console.relative_time(device.last_seen)

    def get_list_filter(self, request):
        return [sidebar_filter(spec) for spec in DEVICE_LIST.ordered_filters()]

    def get_search_results(self, request, queryset, search_term):
        term = device_list.search_term({device_list.SEARCH: search_term})
        if not term:
            return queryset, False
        return queryset.filter(device_list.search_condition(term)), False

    def changelist_view(self, request, extra_context=None):
        params = device_list.query_params(request.GET)
        query = urlencode(params)
        context = {
            "list_query": query,
            "bulk_form": BulkActionForm(user=request.user),
            "bulk_cap": _cap(),
            # Pages other apps offer for the filtered set (DEVICE_LIST.add_action).
            "list_actions": DEVICE_LIST.actions_for(request.user, query),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    # -- pages that act on the filter ----------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("export.csv", wrap(self.export_view), name="devices_device_export"),
            path("save-as-group/", wrap(self.save_as_group_view), name="devices_device_save_group"),
            path("bulk/", wrap(require_POST(self.bulk_view)), name="devices_device_bulk"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        wait = rate_limits.over_rate(rate_limits.limit(EXPORT_LIMIT), str(request.user.pk))
        if wait:
            response = HttpResponse(
                f"Too many exports: try again in {wait} s.", status=429, content_type="text/plain"
            )
            response["Retry-After"] = str(wait)
            return response
        rows = csv_export.rows(device_list.query_params(request.GET))
        response = StreamingHttpResponse(
            streaming.for_server(request, rows, reads_database=True),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="devices-{stamp}.csv"'
        return response

    def save_as_group_view(self, request):
        if not request.user.has_perm("devices.add_devicegroup"):
            raise PermissionDenied
        params = device_list.query_params(request.GET)
        list_url = reverse("admin:devices_device_changelist") + "?" + urlencode(params)
        try:
            document, problems = device_list.filter_document(params), []
        except FilterError as exc:
            document, problems = None, exc.messages
        form = SaveAsGroupForm(request.POST or None)
        if request.method == "POST" and document is not None and form.is_valid():
            values = {**form.cleaned_data, "filters": document}
            try:
                group = groups.create_group(values, actor=actor_for_request(request))
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(request, f"Dynamic group {group.name} saved.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:devices_devicegroup_change", args=[group.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Save the list's filter as a dynamic group",
            "form": form,
            "document": document,
            "document_json": json.dumps(document, indent=2, ensure_ascii=False),
            "problems": problems,
            "list_url": list_url,
        }
        return TemplateResponse(request, "admin/devices/device/save_as_group.html", context)

    def bulk_view(self, request):
        form = BulkActionForm(request.POST, user=request.user)
        params = device_list.query_params(request.GET)
        back = reverse("admin:devices_device_changelist") + "?" + urlencode(params)
        if not form.fields["choice"].choices:
            raise PermissionDenied
        if not form.is_valid():
            self.message_user(request, "Choose an action.", messages.ERROR)
            return HttpResponseRedirect(back)
        action, target = form.action()
        try:
            job = bulk_actions.start(
                action,
                target,
                params,
                actor=actor_for_request(request),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(
            request, f"Bulk action started on {job.total:,} device(s).", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:devices_bulkdeviceaction_change", args=[job.pk]))


def _cap() -> str:
    return f"{settings.BULK_ACTION_MAX_DEVICES:,}"
