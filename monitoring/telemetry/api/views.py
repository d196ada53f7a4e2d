"""Integrator REST: a device's telemetry aggregates per bucket, and its raw points (cursor-paged,
newest first). Readable by whoever may view devices (Fleet viewer and up)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from fleetportal.api.permissions import HasPermissions
from monitoring.telemetry import service
from monitoring.telemetry.api import serializers


class CanViewDevices(HasPermissions):
    perms = ("devices.view_device",)


def valid_query(serializer_class, request) -> dict:
    """The query string's parameters, checked (400 with field errors otherwise)."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class TelemetryAggregatesView(generics.GenericAPIView):
    """avg/min/max/count per bucket and name over `period` (15m, 1h, 24h, 7d, 30d)."""

    permission_classes = [CanViewDevices]
    serializer_class = serializers.AggregatesSerializer
    pagination_class = None

    @extend_schema(parameters=[serializers.AggregatesQuery])
    def get(self, request, device_id: str):
        query = valid_query(serializers.AggregatesQuery, request)
        answer = service.aggregates(service.device_pk(device_id), **query)
        return Response(self.get_serializer({"device_id": device_id, **answer}).data)


class TelemetryPointsView(generics.GenericAPIView):
    """Raw points, newest first; `next` is the URL of the following page (null at the end)."""

    permission_classes = [CanViewDevices]
    serializer_class = serializers.PointsPageSerializer
    pagination_class = None

    @extend_schema(parameters=[serializers.PointsQuery])
    def get(self, request, device_id: str):
        query = valid_query(serializers.PointsQuery, request)
        rows, after = service.points_page(service.device_pk(device_id), **query)
        next_url = None
        if after is not None:
            params = request.query_params.copy()
            params["cursor"] = serializers.cursor_after(*after)
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(self.get_serializer({"next": next_url, "results": rows}).data)
