"""REST for alert rules (CRUD), alerts (list, acknowledge) and webhook deliveries (read).

Views only translate: a rule's validity is AlertRule.clean() (monitoring/alerts/rules.py), the
acknowledgement is monitoring.alerts.services.acknowledge.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from fleetportal.actors import actor_for_request
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import FleetPermissions, HasPermissions
from fleetportal.api.serializers import FleetModelSerializer, ModelCleanMixin
from monitoring.alerts import services
from monitoring.alerts.choices import AlertState
from monitoring.alerts.filtersets import AlertFilterSet, WebhookDeliveryFilterSet
from monitoring.models import Alert, AlertRule, WebhookDelivery


class AlertRuleSerializer(ModelCleanMixin, FleetModelSerializer):
    """A rule's checks are AlertRule.clean()'s (monitoring/alerts/rules.py)."""

    class Meta:
        model = AlertRule
        fields = [
            "id", "name", "description", "kind", "filter", "metric", "op", "threshold",
            "window_seconds", "for_seconds", "severity", "enabled", "webhook_url",
            "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_by", "created_at"]


class AlertSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    device = serializers.CharField(source="device.device_id", read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id", "rule", "rule_name", "device", "severity", "state", "raised_at",
            "resolved_at", "acknowledged_at", "acknowledged_by", "details",
        ]  # fmt: skip
        read_only_fields = fields

    def get_state(self, alert: Alert) -> str:
        if alert.resolved_at is not None:
            return AlertState.RESOLVED
        return AlertState.ACKNOWLEDGED if alert.acknowledged_at else AlertState.OPEN


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "alert", "rule", "event", "url", "status", "attempts", "last_status_code",
            "last_error", "next_attempt_at", "created_at", "delivered_at", "payload",
        ]  # fmt: skip
        read_only_fields = fields


class NewestRaisedFirst(FleetCursorPagination):
    ordering = ("-raised_at", "-id")  # type: ignore[assignment]  # DRF takes a tuple too


class NewestCreatedFirst(FleetCursorPagination):
    ordering = ("-created_at", "-id")  # type: ignore[assignment]  # DRF takes a tuple too


class CanAcknowledge(HasPermissions):
    perms = ("monitoring.view_alert", "monitoring.acknowledge_alert")


class AlertRuleViewSet(viewsets.ModelViewSet):
    """Alert rules: operators create, edit and delete them; every role reads them."""

    queryset = AlertRule.objects.order_by("name")
    serializer_class = AlertRuleSerializer
    permission_classes = [FleetPermissions]

    def perform_create(self, serializer):
        serializer.save(created_by=actor_for_request(self.request))


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts, newest first; open until their rule's condition stops holding."""

    queryset = Alert.objects.select_related("rule", "device")
    serializer_class = AlertSerializer
    permission_classes = [FleetPermissions]
    pagination_class = NewestRaisedFirst
    filterset_class = AlertFilterSet

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanAcknowledge])
    def acknowledge(self, request, pk=None):
        """Records who took the alert on, and when; it stays open until it resolves (409 when
        it already has)."""
        alert = services.acknowledge(self.get_object(), actor_for_request(request))
        return Response(AlertSerializer(alert).data)


class WebhookDeliveryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Webhook deliveries with their attempts, last status and error, next attempt."""

    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    permission_classes = [FleetPermissions]
    pagination_class = NewestCreatedFirst
    filterset_class = WebhookDeliveryFilterSet
