"""Integrator REST for configuration: values, preview, a device's effective configuration, drift,
a group's summary and the change log.

Every write goes through shadows.configuration.services; its ConfigError (bad key, null value,
a configuration some affected device's shadow could not hold, a decommissioned device) becomes
400 {field: [message], "code": "invalid_config"} in fleetportal/api/exceptions.py.
"""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices.models import Device, DeviceGroup
from fleetportal.actors import actor_for_request
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import FleetPermissions, HasPermissions
from shadows.api.config_filtersets import ConfigChangeFilterSet, ConfigValueFilterSet
from shadows.api.config_serializers import (
    ConfigChangeSerializer,
    ConfigPreviewSerializer,
    ConfigSummarySerializer,
    ConfigValueCreateSerializer,
    ConfigValueSerializer,
    ConfigValueUpdateSerializer,
    DeviceConfigurationSerializer,
    DriftedDeviceSerializer,
    DriftQuerySerializer,
)
from shadows.choices import ConfigState
from shadows.configuration import CONFIG_SHADOW, services, states
from shadows.configuration.layering import Effective
from shadows.models import ConfigChange, ConfigValue, Shadow


class CanPreviewConfig(HasPermissions):
    """A preview writes nothing: whoever may read values, devices and groups may preview."""

    perms = ("shadows.view_configvalue", "devices.view_device", "devices.view_devicegroup")


class CanViewDeviceConfig(HasPermissions):
    perms = ("devices.view_device", "shadows.view_deviceconfiguration")


class CanViewGroupSummary(HasPermissions):
    perms = ("devices.view_devicegroup", "shadows.view_deviceconfiguration")


class NewestFirst(FleetCursorPagination):
    ordering = "-id"


class ConfigValueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Configuration values set on groups and devices. There is no PUT: PATCH the value."""

    queryset = ConfigValue.objects.select_related("group", "device")
    serializer_class = ConfigValueSerializer
    permission_classes = [FleetPermissions]
    pagination_class = NewestFirst
    filterset_class = ConfigValueFilterSet
    lookup_value_regex = "[0-9]+"

    @extend_schema(request=ConfigValueCreateSerializer, responses={201: ConfigValueSerializer})
    def create(self, request):
        """Set a key on a group or a device and push it to the devices it reaches."""
        body = ConfigValueCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scope = {"group": data["group"]} if data.get("group") else {"device": data["device"]}
        value = services.set_value(
            data["key"], data["value"], actor=actor_for_request(request), create=True, **scope
        )
        return Response(self._read(value), status=status.HTTP_201_CREATED)

    @extend_schema(request=ConfigValueUpdateSerializer, responses=ConfigValueSerializer)
    def partial_update(self, request, pk=None):
        """Change the value; its version goes up and the devices get the new value."""
        current = self.get_object()
        body = ConfigValueUpdateSerializer(current, data=request.data)
        body.is_valid(raise_exception=True)
        value = services.update_value(
            current, body.validated_data["value"], actor=actor_for_request(request)
        )
        return Response(self._read(value))

    def destroy(self, request, pk=None):
        """Remove the value: its devices fall back to the next layer's value or lose the key."""
        services.remove_value(self.get_object(), actor=actor_for_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ConfigValueCreateSerializer, responses=ConfigPreviewSerializer)
    @action(detail=False, methods=["post"], permission_classes=[CanPreviewConfig])
    def preview(self, request):
        """What setting a value would do, writing nothing: how many devices it reaches and the
        resulting configuration of the first ones. Refused like the change itself would be."""
        body = ConfigValueCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = services.preview(
            data["key"], data["value"], group=data.get("group"), device=data.get("device")
        )
        sample = [
            {"device_id": item.device_id, "configuration": _entries(configuration)}
            for item, configuration in result.sample
        ]
        return Response({"devices": result.devices, "sample": sample})

    def _read(self, value: ConfigValue) -> dict:
        return ConfigValueSerializer(self.get_queryset().get(pk=value.pk)).data


def _entry(entry: Effective) -> dict[str, Any]:
    return {
        "value": entry.value,
        "source": entry.source_name,
        "group_id": entry.source_group_id,
        # The preview's not yet saved value has version 0 (shadows.configuration.services).
        "version": entry.version or None,
    }


def _entries(configuration: dict[str, Effective]) -> dict[str, dict]:
    return {key: _entry(entry) for key, entry in configuration.items()}


def effective_with_state(device: Device) -> dict[str, dict]:
    """Each effective key with its state (shadows.configuration.states), what was pushed
    (DeviceConfiguration) and what the device reports. A key not pushed yet (a big group is
    rendered by a task after the commit) has no push or apply time."""
    configuration = services.effective_configuration(device)
    shadow = Shadow.objects.filter(device=device, name=CONFIG_SHADOW, live=True).first()
    reported = shadow.reported_state if shadow is not None else {}
    result = {}
    for key, (state, row) in states.key_states(device, configuration).items():
        result[key] = {
            **_entry(configuration[key]),
            "state": state,
            "applied": state == ConfigState.APPLIED,
            "applied_at": row.applied_at if row else None,
            "pushed_at": row.pushed_at if row else None,
            "reported": reported.get(key),
        }
    return result


class DeviceConfigurationView(generics.GenericAPIView):
    """The device's effective configuration: every key, where its value comes from, and whether
    the device has applied it."""

    queryset = Device.objects.all()
    serializer_class = DeviceConfigurationSerializer
    permission_classes = [CanViewDeviceConfig]
    pagination_class = None
    lookup_field = "device_id"

    def get(self, request, device_id: str):
        device = self.get_object()
        configuration = effective_with_state(device)
        return Response({"device_id": device.device_id, "configuration": configuration})


@extend_schema(
    parameters=[OpenApiParameter("group", OpenApiTypes.UUID, description="A group's id.")]
)
class DriftView(generics.ListAPIView):
    """Devices with a key not applied CONFIG_DRIFT_MINUTES after it was pushed, newest device
    first, each with the keys that differ."""

    serializer_class = DriftedDeviceSerializer
    permission_classes = [CanViewDeviceConfig]
    pagination_class = FleetCursorPagination
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Device.objects.none()
        query = DriftQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return services.drifted_devices(query.validated_data.get("group"))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "details": services.drift_details(page)}
        data = DriftedDeviceSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)


class GroupConfigSummaryView(generics.GenericAPIView):
    """How many of the group's configured members applied everything, wait, or drifted."""

    queryset = DeviceGroup.objects.all()
    serializer_class = ConfigSummarySerializer
    permission_classes = [CanViewGroupSummary]
    pagination_class = None

    def get(self, request, pk):
        group = get_object_or_404(DeviceGroup, pk=pk)
        return Response(services.group_summary(group))


class ConfigChangeViewSet(viewsets.ReadOnlyModelViewSet):
    """Every change of a configuration value, newest first."""

    queryset = ConfigChange.objects.select_related("device")
    serializer_class = ConfigChangeSerializer
    permission_classes = [FleetPermissions]
    pagination_class = FleetCursorPagination
    filterset_class = ConfigChangeFilterSet
