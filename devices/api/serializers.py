from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from devices.choices import DeviceStatus
from devices.group_filters import FilterError, validate_filters
from devices.models import Device, DeviceEvent, DeviceGroup
from devices.validators import validate_device_id
from fleetportal.api.serializers import (
    FleetModelSerializer,
    ModelCleanMixin,
    StrictFieldsMixin,
)
from fleetportal.paginators import capped_count


class DeviceSerializer(FleetModelSerializer):
    """A device as integrators see it. Field rules come from the model (validators, clean())."""

    group = serializers.SlugRelatedField(
        slug_field="name",
        queryset=DeviceGroup.objects.all(),
        allow_null=True,
        required=False,
        help_text="The group's name.",
        error_messages={"does_not_exist": "No group is named {value}."},
    )
    online = serializers.BooleanField(source="is_online", read_only=True)
    allowed_transitions = serializers.ListField(
        child=serializers.ChoiceField(choices=DeviceStatus.choices), read_only=True
    )

    class Meta:
        model = Device
        fields = [
            "id",
            "device_id",
            "device_name",
            "device_type",
            "manufacturer",
            "model",
            "serial_number",
            "firmware_version",
            "hardware_version",
            "status",
            "allowed_transitions",
            "online",
            "last_seen",
            "last_ip_address",
            "location",
            "metadata",
            "group",
            "gateway",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "last_seen"]
        extra_kwargs = {
            "device_id": {
                # An identifier is taken as sent: "dev-1\n" is refused, not quietly trimmed.
                "trim_whitespace": False,
                "validators": [
                    validate_device_id,
                    # A decommissioned device keeps its row, so its device_id stays taken.
                    UniqueValidator(
                        Device.objects.all(),
                        message="This device_id is or was in use; device IDs are never reused.",
                    ),
                ],
            }
        }

    def validate_device_id(self, value):
        if self.instance is not None and value != self.instance.device_id:
            raise serializers.ValidationError("device_id cannot be changed.")
        return value

    def validate(self, attrs):
        # status is read-only, so DRF would drop it silently; say where status changes go instead.
        current = self.instance.status if self.instance else DeviceStatus.REGISTERED
        if self.initial_data.get("status", current) != current:
            raise serializers.ValidationError(
                {"status": "Change status with POST /api/v1/devices/{device_id}/transition/."}
            )
        if self.instance is not None:
            attrs.pop("device_id", None)
        return attrs


class DeviceTransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=DeviceStatus.choices, help_text="The target status.")
    reason = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, help_text="Kept in the device's event."
    )
    from_status = serializers.ChoiceField(
        choices=DeviceStatus.choices,
        required=False,
        help_text="The status you expect the device to be in; 409 if it is not.",
    )


class DeviceGroupSerializer(ModelCleanMixin, FleetModelSerializer):
    # The group's rules (a valid filter, no filter while devices are assigned) are
    # DeviceGroup.clean()'s (ModelCleanMixin).

    member_count = serializers.SerializerMethodField(
        help_text="Members now. In lists, null for dynamic groups (counting each filter would "
        "scan the fleet per row); on a single group, exact up to the list count limit."
    )
    member_count_is_approximate = serializers.SerializerMethodField(
        help_text="True when member_count is the planner's estimate (past the exact limit)."
    )

    class Meta:
        model = DeviceGroup
        fields = [
            "id",
            "name",
            "description",
            "filters",
            "is_dynamic",
            "priority",
            "member_count",
            "member_count_is_approximate",
            "created_at",
            "updated_at",
        ]

    def _count(self, group) -> tuple[int | None, bool]:
        if not group.is_dynamic:
            return getattr(group, "member_count", None), False
        if not self.context.get("count_dynamic"):
            return None, False
        cache = self.context.setdefault("_counts", {})
        if group.pk not in cache:
            try:
                cache[group.pk] = capped_count(group.members())
            except FilterError:  # saved before validation existed: no members to show
                cache[group.pk] = (None, False)
        return cache[group.pk]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_member_count(self, group) -> int | None:
        return self._count(group)[0]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_member_count_is_approximate(self, group) -> bool:
        return self._count(group)[1]


def _device_ids(help_text: str) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="device_id",
        queryset=Device.objects.all(),
        many=True,
        required=False,
        help_text=help_text,
        error_messages={"does_not_exist": "No device has the device_id {value}."},
    )


class GroupMembersSerializer(StrictFieldsMixin, serializers.Serializer):
    add = _device_ids("device_ids to put in this static group (out of the group they are in).")
    remove = _device_ids("device_ids to take out of this group; others are left alone.")

    def validate(self, attrs):
        both = {d.device_id for d in attrs.get("add", [])} & {
            d.device_id for d in attrs.get("remove", [])
        }
        if both:
            raise serializers.ValidationError(
                {"remove": [f"Both added and removed: {', '.join(sorted(both))}."]}
            )
        return attrs


class GroupMembersResultSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Devices that joined the group.")
    removed = serializers.IntegerField(help_text="Devices that left it.")


class GroupPreviewSerializer(StrictFieldsMixin, serializers.Serializer):
    filters = serializers.JSONField(help_text="A filter document (devices/group_filters.py).")

    def validate_filters(self, value):
        if not value:
            raise serializers.ValidationError("A preview needs a filter document.")
        try:
            validate_filters(value)
        except FilterError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value


class GroupPreviewDeviceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ["device_id", "device_type", "status", "firmware_version"]
        read_only_fields = fields


class GroupPreviewResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    count_is_approximate = serializers.BooleanField()
    sample = GroupPreviewDeviceSerializer(many=True)


class DeviceEventSerializer(FleetModelSerializer):
    device = serializers.CharField(source="device.device_id", read_only=True)

    class Meta:
        model = DeviceEvent
        fields = ["id", "device", "event_type", "event_data", "actor", "created_at"]
        read_only_fields = fields
