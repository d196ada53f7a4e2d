from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices import groups, services
from devices.api.audit import log_group_change
from devices.api.permissions import (
    CanAssignDevices,
    CanPreviewGroups,
    CanTransitionDevices,
    CanViewDeviceEvents,
)
from devices.api.serializers import (
    DeviceEventSerializer,
    DeviceGroupSerializer,
    DeviceSerializer,
    DeviceTransitionSerializer,
    GroupMembersResultSerializer,
    GroupMembersSerializer,
    GroupPreviewDeviceSerializer,
    GroupPreviewResultSerializer,
    GroupPreviewSerializer,
)
from devices.filtersets import DeviceEventFilterSet, DeviceFilterSet, DeviceGroupFilterSet
from devices.group_filters import compile_filters
from devices.models import Device, DeviceEvent, DeviceGroup
from devices.validators import DEVICE_ID_CHARS
from fleetportal.actors import actor_for_request
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import FleetPermissions


class DeviceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Devices, addressed by device_id. There is no DELETE: decommission a device instead."""

    queryset = Device.objects.select_related("group")
    serializer_class = DeviceSerializer
    permission_classes = [FleetPermissions]
    pagination_class = FleetCursorPagination
    filterset_class = DeviceFilterSet

    def get_queryset(self):
        # Per request: "online" depends on the time (and on devices.online's definition).
        return super().get_queryset().with_online()

    lookup_field = "device_id"
    lookup_value_regex = DEVICE_ID_CHARS

    def perform_create(self, serializer):
        actor = actor_for_request(self.request)
        serializer.instance = services.register_device(serializer.validated_data, actor=actor)

    def perform_update(self, serializer):
        serializer.instance = services.update_device(
            serializer.instance, serializer.validated_data, actor=actor_for_request(self.request)
        )

    @extend_schema(request=DeviceTransitionSerializer, responses=DeviceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanTransitionDevices])
    def transition(self, request, device_id=None):
        """Move the device through its lifecycle; 409 if `from_status` no longer holds."""
        params = DeviceTransitionSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        device = services.transition_device(
            self.get_object(),
            params.validated_data["status"],
            actor=actor_for_request(request),
            reason=params.validated_data.get("reason", ""),
            expected=params.validated_data.get("from_status"),
        )
        return Response(self.get_serializer(device).data)

    @extend_schema(responses=DeviceEventSerializer(many=True))
    @action(
        detail=True,
        permission_classes=[CanViewDeviceEvents],
        serializer_class=DeviceEventSerializer,
        filterset_class=None,
    )
    def events(self, request, device_id=None):
        """The device's timeline, newest first."""
        page = self.paginate_queryset(self.get_object().events.all())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def _member_count():
    # A correlated count per listed group uses the device group index for that page's groups
    # only, instead of joining and grouping the whole device table.
    members = Device.objects.filter(group=OuterRef("pk")).order_by().values("group")
    return Coalesce(Subquery(members.annotate(n=Count("pk")).values("n")), 0)


class DeviceGroupViewSet(viewsets.ModelViewSet):
    """Device groups, addressed by id. Every change is logged in the admin's history."""

    queryset = DeviceGroup.objects.annotate(member_count=_member_count())
    serializer_class = DeviceGroupSerializer
    permission_classes = [FleetPermissions]
    filterset_class = DeviceGroupFilterSet

    def get_serializer_context(self):
        # A dynamic group's count runs its filter: on one group's page, not once per listed row.
        return {**super().get_serializer_context(), "count_dynamic": self.action != "list"}

    @extend_schema(request=GroupPreviewSerializer, responses=GroupPreviewResultSerializer)
    @action(detail=False, methods=["post"], permission_classes=[CanPreviewGroups])
    def preview(self, request):
        """The devices a filter matches now, before saving it: a count (exact up to the list
        limit, estimated past it) and the newest 20 matches."""
        params = GroupPreviewSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        matches = groups.preview_members(
            Device.objects.filter(compile_filters(params.validated_data["filters"]))
        )
        return Response(
            {
                "count": matches.count,
                "count_is_approximate": matches.approximate,
                "sample": GroupPreviewDeviceSerializer(matches.sample, many=True).data,
            }
        )

    @extend_schema(request=GroupMembersSerializer, responses=GroupMembersResultSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanAssignDevices])
    def members(self, request, pk=None):
        """Assign devices to this static group (`add`) or take them out of it (`remove`), in
        one transaction; each moved device records an `updated` event."""
        params = GroupMembersSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        group, actor = self.get_object(), actor_for_request(request)
        with transaction.atomic():
            added = groups.assign_devices(params.validated_data.get("add", []), group, actor=actor)
            removed = groups.remove_devices(
                group, params.validated_data.get("remove", []), actor=actor
            )
        return Response({"added": added, "removed": removed})

    @transaction.atomic
    def perform_create(self, serializer):
        actor = actor_for_request(self.request)
        group = groups.create_group(serializer.validated_data, actor=actor)
        log_group_change(self.request, group, ADDITION)
        serializer.instance = self.get_queryset().get(pk=group.pk)

    @transaction.atomic
    def perform_update(self, serializer):
        group, data = serializer.instance, serializer.validated_data
        changed = [name for name, value in data.items() if getattr(group, name) != value]
        groups.update_group(group, data, actor=actor_for_request(self.request))
        log_group_change(self.request, group, CHANGE, changed)
        serializer.instance = self.get_queryset().get(pk=group.pk)

    @transaction.atomic
    def perform_destroy(self, instance):
        log_group_change(self.request, instance, DELETION)
        groups.delete_group(instance, actor=actor_for_request(self.request))


class DeviceEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The fleet-wide event timeline, newest first."""

    queryset = DeviceEvent.objects.select_related("device")
    serializer_class = DeviceEventSerializer
    permission_classes = [FleetPermissions]
    pagination_class = FleetCursorPagination
    filterset_class = DeviceEventFilterSet
