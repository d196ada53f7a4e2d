"""List filters for the device API. Each filter is served by an index in devices/models.py."""

import json

import django_filters as filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.db.models import Q
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError

from devices.choices import DeviceStatus
from devices.group_filters import FilterError
from devices.models import Device, DeviceEvent, DeviceGroup
from fleetportal import gateways, timestamps

AFTER = "At or after this time (ISO 8601)."
BEFORE = "Strictly before this time (ISO 8601)."


class StorableDateTimeField(IsoDateTimeField):
    """ISO 8601, refused with a 400 where PostgreSQL would refuse it (offsets beyond ±15:59)."""

    def clean(self, value):
        parsed = super().clean(value)
        if parsed is not None and not timestamps.offset_in_range(parsed):
            raise DjangoValidationError(timestamps.OFFSET_ERROR, code="invalid")
        return parsed


class StorableDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = StorableDateTimeField


def _after(field: str) -> StorableDateTimeFilter:
    return StorableDateTimeFilter(field_name=field, lookup_expr="gte", help_text=AFTER)


def _before(field: str) -> StorableDateTimeFilter:
    return StorableDateTimeFilter(field_name=field, lookup_expr="lt", help_text=BEFORE)


def metadata_pair(value: str) -> dict:
    """`key:value` as a containment document; the value is JSON when it parses, else a string.

    So `site:berlin` matches {"site": "berlin"}, `floor:3` matches {"floor": 3} and
    `floor:"3"` matches {"floor": "3"}.
    """
    key, _, raw = value.partition(":")
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    if isinstance(parsed, dict | list):
        parsed = raw
    return {key: parsed}


class DeviceFilterSet(filters.FilterSet):
    # distinct=False: status IN (…) cannot produce duplicates, and SELECT DISTINCT would stop
    # Postgres walking the (status, created_at) index for a page.
    status = filters.MultipleChoiceFilter(
        choices=DeviceStatus.choices,
        distinct=False,
        help_text="Repeat to match any of several statuses.",
    )
    # A registered gateway's name; few devices are off the default one, and those have their
    # own index (device_off_default_gateway_idx).
    gateway = filters.ChoiceFilter(
        choices=gateways.choices,
        help_text="The device's gateway: mosquitto (the portal's own broker) or aws.",
    )
    group = filters.ModelChoiceFilter(
        to_field_name="name",
        queryset=DeviceGroup.objects.all(),
        method="filter_group",
        help_text="A group's name: its assigned members, or a dynamic group's matches.",
        error_messages={"invalid_choice": "No group is named %(value)s."},
    )
    # A strict true/false: BooleanFilter would silently ignore a misspelt value.
    online = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_online",
        help_text="Seen within the online window (FLEETPORTAL_ONLINE_WINDOW_SECONDS).",
    )
    last_seen_after = _after("last_seen")
    last_seen_before = _before("last_seen")
    created_after = _after("created_at")
    created_before = _before("created_at")
    metadata_has_key = filters.CharFilter(field_name="metadata", lookup_expr="has_key")
    metadata = filters.CharFilter(
        method="filter_metadata",
        validators=[RegexValidator(r"^[^:]+:", "Use key:value, for example site:berlin.")],
        help_text='key:value; the value is read as JSON when it parses (floor:3, floor:"3").',
    )
    q = filters.CharFilter(
        method="search", help_text="Substring of device_id, device_name or serial_number."
    )

    class Meta:
        model = Device
        fields = [
            "status",
            "device_type",
            "group",
            "firmware_version",
            "hardware_version",
            "manufacturer",
            "model",
            "serial_number",
        ]

    def filter_online(self, queryset, name, value):
        return queryset.online() if value == "true" else queryset.offline()

    def filter_group(self, queryset, name, value):
        try:
            return queryset.in_group(value)
        except FilterError as exc:
            raise ValidationError({"group": [f"Group {value} has an invalid filter."]}) from exc

    def filter_metadata(self, queryset, name, value):
        return queryset.filter(metadata__contains=metadata_pair(value))

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(device_id__icontains=value)
            | Q(device_name__icontains=value)
            | Q(serial_number__icontains=value)
        )


class DeviceGroupFilterSet(filters.FilterSet):
    class Meta:
        model = DeviceGroup
        fields = ["name"]


class DeviceEventFilterSet(filters.FilterSet):
    # A plain string, not a model choice: a choice field would load the fleet into a <select>.
    device = filters.CharFilter(field_name="device__device_id", help_text="A device_id.")
    created_after = _after("created_at")
    created_before = _before("created_at")

    class Meta:
        model = DeviceEvent
        fields = ["device", "event_type", "actor"]
