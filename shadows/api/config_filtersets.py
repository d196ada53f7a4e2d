"""List filters for the configuration API.

config-values: group and device use the partial unique indexes (group, key) and (device, key);
config-changes: key uses configchange_key_idx, the rest are narrow enough for the FK indexes.
"""

import django_filters as filters

from shadows.api.config_serializers import SCOPES
from shadows.models import ConfigChange, ConfigValue


class ConfigValueFilterSet(filters.FilterSet):
    group = filters.UUIDFilter(field_name="group", help_text="A group's id.")
    # A plain string, not a model choice: a choice field would load the fleet into a <select>.
    device = filters.CharFilter(field_name="device__device_id", help_text="A device_id.")
    key = filters.CharFilter(field_name="key")
    scope = filters.ChoiceFilter(
        choices=SCOPES, method="filter_scope", help_text="Values set on groups or on devices."
    )

    class Meta:
        model = ConfigValue
        fields = ["group", "device", "key", "scope"]

    def filter_scope(self, queryset, name, value):
        return queryset.filter(group__isnull=value != "group")


class ConfigChangeFilterSet(filters.FilterSet):
    group = filters.UUIDFilter(field_name="group", help_text="A group's id.")
    device = filters.CharFilter(field_name="device__device_id", help_text="A device_id.")
    key = filters.CharFilter(field_name="key")

    class Meta:
        model = ConfigChange
        fields = ["group", "device", "key"]
