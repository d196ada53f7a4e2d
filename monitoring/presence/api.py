"""REST: a device's health, its presence events, and the fleet's presence events (read-only;
presence is derived, never written through the API). Same roles as devices' read endpoints."""

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.api.serializers import DeviceEventSerializer
from devices.models import Device, DeviceEvent
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import HasPermissions
from monitoring.presence.choices import OFFLINE_EVENT, ONLINE_EVENT
from monitoring.presence.health import device_health

PRESENCE_EVENTS = (ONLINE_EVENT, OFFLINE_EVENT)


class CanViewDevices(HasPermissions):
    perms = ("devices.view_device",)


class CanViewPresenceEvents(HasPermissions):
    perms = ("devices.view_device", "devices.view_deviceevent")


class HealthSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    status = serializers.CharField()
    online = serializers.BooleanField()
    last_seen = serializers.DateTimeField(allow_null=True)
    connected_at = serializers.DateTimeField(allow_null=True)
    disconnected_at = serializers.DateTimeField(allow_null=True)
    presence_changed_at = serializers.DateTimeField(allow_null=True)
    presence_reason = serializers.CharField()
    battery = serializers.JSONField(allow_null=True)
    signal = serializers.JSONField(allow_null=True)
    firmware_version = serializers.CharField()
    certificate_expires_at = serializers.DateTimeField(allow_null=True)
    configuration = serializers.DictField(child=serializers.IntegerField())
    current_job = inline_serializer(
        "CurrentJob",
        {
            "job_id": serializers.CharField(),
            "status": serializers.CharField(),
            "execution_number": serializers.IntegerField(),
        },
        allow_null=True,
    )


class DeviceHealthView(APIView):
    """GET /api/v1/devices/<device_id>/health/: online, last seen, connection, battery, signal,
    firmware, status, certificate expiry, configuration, current job."""

    permission_classes = [CanViewDevices]

    @extend_schema(responses=HealthSerializer)
    def get(self, request, device_id: str):
        return Response(HealthSerializer(device_health(device_id).as_dict()).data)


class PresenceEventFilterSet(filters.FilterSet):
    device = filters.CharFilter(field_name="device__device_id", help_text="A device_id.")
    since = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = DeviceEvent
        fields = ["device", "since"]


class PresenceEventList(generics.ListAPIView):
    """GET /api/v1/presence-events/: device_online / device_offline events, newest first."""

    serializer_class = DeviceEventSerializer
    permission_classes = [CanViewPresenceEvents]
    pagination_class = FleetCursorPagination
    filterset_class = PresenceEventFilterSet

    def get_queryset(self) -> QuerySet:
        events = DeviceEvent.objects.filter(event_type__in=PRESENCE_EVENTS)
        return events.select_related("device")


class DevicePresenceEventList(PresenceEventList):
    """GET /api/v1/devices/<device_id>/presence-events/: one device's, newest first."""

    filterset_class = None

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no device
            return DeviceEvent.objects.none()
        device = generics.get_object_or_404(Device, device_id=self.kwargs["device_id"])
        return super().get_queryset().filter(device=device)
