"""List filters of the alert API; each is served by an index on Alert or WebhookDelivery."""

import django_filters as filters

from monitoring.alerts.choices import AlertState, DeliveryStatus, Severity
from monitoring.models import Alert, AlertRule, WebhookDelivery


class AlertFilterSet(filters.FilterSet):
    state = filters.ChoiceFilter(
        choices=AlertState.choices,
        method="filter_state",
        help_text="open (not resolved), acknowledged (open and acknowledged) or resolved.",
    )
    rule = filters.ModelChoiceFilter(queryset=AlertRule.objects.all(), help_text="A rule's id.")
    device = filters.CharFilter(
        field_name="device__device_id", max_length=128, help_text="A device's device_id."
    )
    severity = filters.ChoiceFilter(choices=Severity.choices)

    class Meta:
        model = Alert
        fields = ["state", "rule", "device", "severity"]

    def filter_state(self, queryset, name, value):
        if value == AlertState.RESOLVED:
            return queryset.filter(resolved_at__isnull=False)
        queryset = queryset.filter(resolved_at__isnull=True)  # alert_open_raised_idx
        if value == AlertState.ACKNOWLEDGED:
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


class WebhookDeliveryFilterSet(filters.FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    rule = filters.ModelChoiceFilter(queryset=AlertRule.objects.all(), help_text="A rule's id.")

    class Meta:
        model = WebhookDelivery
        fields = ["status", "rule", "alert"]
