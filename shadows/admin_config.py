"""The operators' configuration pages: the values set on groups and devices, what each device was
pushed, the change log, and the configuration sections of the device and group pages.

Every change goes through shadows.configuration.services: the form checks a change with
`services.preview` (which writes nothing), and saving calls `set_value` / `remove_value` with the
operator as actor, which re-checks under lock. The device and group pages are those of
devices.admin; the configuration sections are added through devices.pages, so devices never
imports shadows.
"""

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from devices.admin_filters import MAX_FILTER_VALUES, distinct_values
from devices.models import Device, DeviceGroup
from devices.pages import DEVICE_PAGE, GROUP_PAGE
from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin, ReadOnlyAdmin
from fleetportal.forms import JSONTextField
from fleetportal.pages import Link, Section
from shadows.choices import ConfigState
from shadows.configuration import services, states
from shadows.configuration.keys import KEY_RULE, ConfigError, check_key, check_value
from shadows.models import ConfigChange, ConfigValue, DeviceConfiguration

VALUE_WIDTH = 80


def compact(value: Any, width: int = VALUE_WIDTH) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


# -- filters --------------------------------------------------------------------------------


class ValueKeyFilter(admin.SimpleListFilter):
    """The keys set anywhere (few: groups times keys, plus devices' own values)."""

    title = "key"
    parameter_name = field_name = "key"

    def lookups(self, request, model_admin):
        keys = ConfigValue.objects.order_by("key").values_list("key", flat=True).distinct()
        return [(key, key) for key in keys[:MAX_FILTER_VALUES]]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field_name: self.value()})
        return queryset


class PushedKeyFilter(ValueKeyFilter):
    # Pushed keys are the keys set somewhere: no DISTINCT over one row per device and key.
    parameter_name = field_name = "config_key"


class ChangedKeyFilter(ValueKeyFilter):
    def lookups(self, request, model_admin):
        # Served by the (key, -created_at) index through a loose index scan.
        return [(key, key) for key in distinct_values(ConfigChange, "key")]


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("groups", "On groups"), ("devices", "On devices")]

    def queryset(self, request, queryset):
        if self.value() == "groups":
            return queryset.filter(group__isnull=False)
        if self.value() == "devices":
            return queryset.filter(device__isnull=False)
        return queryset


class ConfiguredGroupFilter(admin.SimpleListFilter):
    """The groups that set configuration; the group page links here with ?group=<pk>."""

    title = "group"
    parameter_name = "group"

    def lookups(self, request, model_admin):
        groups = services.configured_groups().order_by("name").values_list("pk", "name")
        return [(str(pk), name) for pk, name in groups[:MAX_FILTER_VALUES]]

    def queryset(self, request, queryset):
        return queryset.filter(group=self.value()) if self.value() else queryset


# -- configuration values -------------------------------------------------------------------


class ConfigValueForm(forms.ModelForm):
    """One key on one group or one device; the value is any JSON but null."""

    value = JSONTextField(
        label="Value",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "class": "vLargeTextField"}),
        help_text='JSON: 60, "eco", true, [1, 2] or {"a": 1}. Not null: remove the value instead.',
    )

    class Meta:
        model = ConfigValue
        fields = ("group", "device", "key", "value")
        help_texts = {"key": KEY_RULE}

    def clean(self):
        data = self.cleaned_data
        instance = self.instance
        adding = instance._state.adding
        group = data.get("group") if adding else instance.group
        device = data.get("device") if adding else instance.device
        key = data.get("key") if adding else instance.key
        if adding and (group is None) == (device is None):
            raise forms.ValidationError("Choose exactly one group or one device.")
        if key is None or "value" not in data:
            return data  # the field's own error is shown
        try:
            check_key(key)
            check_value(key, data["value"])
            # Every affected device's whole configuration must still fit; nothing is written.
            services.preview(key, data["value"], group=group, device=device)
        except ConfigError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return data
        # The unique (group, key) / (device, key) constraints: an existing key is changed.
        return super().clean()


@admin.register(ConfigValue)
class ConfigValueAdmin(FleetModelAdmin):
    form = ConfigValueForm
    list_display = ("key", "scope_link", "value_text", "version", "updated_at", "updated_by")
    list_select_related = ("group", "device")
    list_filter = (ValueKeyFilter, ScopeFilter, ConfiguredGroupFilter)
    search_fields = ("key",)
    search_help_text = "Key contains…"
    ordering = ("key", "id")
    sortable_by = ("key", "updated_at")
    # There can be a million devices: pick one by searching its ID.
    autocomplete_fields = ("group", "device")
    readonly_fields = ("version", "updated_at", "updated_by")

    def get_fields(self, request, obj=None):
        return ("group", "device", "key", "value", *(self.readonly_fields if obj else ()))

    def get_readonly_fields(self, request, obj=None):
        # A value's place (scope and key) is what it is: to move it, remove it and add another.
        return ("group", "device", "key", *self.readonly_fields) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "device":
            kwargs["queryset"] = Device.objects.in_service()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="scope")
    def scope_link(self, value: ConfigValue) -> str:
        if value.group_id:
            url = reverse("admin:devices_devicegroup_change", args=[value.group_id])
            return format_html('group <a href="{}">{}</a>', url, value.group.name)
        url = reverse("admin:devices_device_change", args=[value.device_id])
        return format_html('device <a href="{}">{}</a>', url, value.device.device_id)

    @admin.display(description="value")
    def value_text(self, value: ConfigValue) -> str:
        return compact(value.value)

    # -- changes go through the service -------------------------------------------------------

    def save_model(self, request, obj, form, change):
        saved = services.set_value(
            obj.key,
            form.cleaned_data["value"],
            group=obj.group,
            device=obj.device,
            actor=actor_for_request(request),
        )
        obj.pk, obj.version = saved.pk, saved.version

    def delete_model(self, request, obj):
        services.remove_value(obj, actor=actor_for_request(request))

    def delete_queryset(self, request, queryset):
        refused = []
        for value in queryset.select_related("group", "device"):
            try:
                services.remove_value(value, actor=actor_for_request(request))
            except ConfigError as exc:
                refused.append(f"{value}: {exc.message}")
        for reason in refused:
            self.message_user(request, f"Not removed: {reason}", messages.ERROR)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConfigError as exc:
            # The form checked the change; another change in between can still make it refused.
            # The admin's transaction rolled back: nothing was written.
            self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ConfigError as exc:
            # Removing can make a device fall back to a value too big for its shadow.
            self.message_user(request, f"Not removed: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


# -- what was pushed, and the change log (written by the service only) ----------------------


@admin.register(DeviceConfiguration)
class DeviceConfigurationAdmin(ReadOnlyAdmin):
    list_display = (
        "device",
        "config_key",
        "value_text",
        "version",
        "source",
        "state",
        "applied_at",
        "pushed_at",
    )
    list_select_related = ("device", "source_group")
    list_filter = ("applied", PushedKeyFilter)
    search_fields = ("^device__device_id",)
    search_help_text = "Device ID starts with…"
    # Served by the unique (device, config_key) index; other orders would sort every row.
    ordering = ("device", "config_key")
    sortable_by = ()

    def get_queryset(self, request):
        # The row's state by the one rule (states), computed in the list's own query.
        cutoff = states.drift_cutoff()
        return super().get_queryset(request).annotate(state=states.state_of_row(cutoff))

    @admin.display(description="value")
    def value_text(self, row: DeviceConfiguration) -> str:
        return compact(row.config_value)

    @admin.display(description="state")
    def state(self, row: DeviceConfiguration) -> str:
        return ConfigState(row.state).label

    @admin.display(description="source")
    def source(self, row: DeviceConfiguration) -> str:
        return row.source_group.name if row.source_group_id else "device"


@admin.register(ConfigChange)
class ConfigChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "key", "scope", "old", "new", "version", "actor")
    list_filter = (ChangedKeyFilter,)
    search_fields = ("key", "scope", "actor")
    search_help_text = "Key, scope or actor contains…"
    ordering = ("-created_at",)
    sortable_by = ("created_at",)

    @admin.display(description="old value")
    def old(self, change: ConfigChange) -> str:
        return "" if change.old_value is None else compact(change.old_value)

    @admin.display(description="new value")
    def new(self, change: ConfigChange) -> str:
        return "(removed)" if change.new_value is None else compact(change.new_value)


# -- the device and group pages -------------------------------------------------------------


def device_configuration(device: Device) -> list[dict]:
    """The device's effective configuration with what was pushed and whether it is applied."""
    if not getattr(device, "config_applies", True):
        return []  # see _config_applies
    configuration = services.effective_configuration(device)
    if not configuration:
        return []
    rows = []
    for key, (state, row) in states.key_states(device, configuration).items():
        entry = configuration[key]
        rows.append(
            {
                "key": key,
                "value": compact(entry.value, 200),
                "source": entry.source_name,
                "source_group_id": entry.source_group_id,
                "version": entry.version,
                "state": state,
                "state_label": state.label,
                "since": (row.applied_at if row.applied else row.pushed_at) if row else None,
            }
        )
    return rows


def _device_section(request, device: Device) -> dict:
    return {
        "configuration": device_configuration(device),
        "can_add_config_value": request.user.has_perm("shadows.add_configvalue"),
        "can_push": request.user.has_perm("shadows.change_configvalue"),
    }


def _group_section(request, group: DeviceGroup) -> dict:
    values = list(ConfigValue.objects.filter(group=group).order_by("key"))
    for value in values:
        value.text = compact(value.value, 200)
    context = {
        "config_values": values,
        "can_add_config_value": request.user.has_perm("shadows.add_configvalue"),
    }
    if request.user.has_perm("shadows.view_deviceconfiguration"):
        context["config_summary"] = services.group_summary(group)
        context["drift_minutes"] = settings.CONFIG_DRIFT_MINUTES
    return context


def _config_applies(queryset):
    # Whether any configuration can apply, asked in the device's own query (two index probes):
    # a device page without configuration costs no extra query.
    return queryset.annotate(
        config_applies=Exists(ConfigValue.objects.filter(group__isnull=False))
        | Exists(ConfigValue.objects.filter(device=OuterRef("pk")))
    )


def _shadows_url(device: Device) -> str:
    query = urlencode({"device__device_id": device.device_id})
    return f"{reverse('admin:shadows_shadow_changelist')}?{query}"


DEVICE_PAGE.add_annotation(_config_applies)
DEVICE_PAGE.add_section(
    Section(
        "configuration",
        "admin/shadows/device_configuration.html",
        _device_section,
        permission="shadows.view_deviceconfiguration",
        order=20,
    )
)
DEVICE_PAGE.add_link(Link("shadows", "Shadows", _shadows_url, permission="shadows.view_shadow"))
GROUP_PAGE.add_section(
    Section(
        "configuration",
        "admin/shadows/group_configuration.html",
        _group_section,
        permission="shadows.view_configvalue",
        order=20,
    )
)
