"""Configuration over REST: values (a group's or a device's), effective configuration, drift.

Input serializers check the request's shape only (known fields, exactly one scope, a group or
device that exists); what a key or value may be is the service's rule (shadows.configuration),
whose ConfigError the API maps to 400 {field: [message]}.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.models import Device, DeviceGroup
from fleetportal.api.serializers import StrictFieldsMixin
from shadows.choices import ConfigState
from shadows.models import ConfigChange, ConfigValue

SCOPES = [("group", "group"), ("device", "device")]
ONE_SCOPE = "Give exactly one of group (a group id) or device (a device_id)."
SOURCE_HELP = '"device" for the device\'s own value, else the name of the group it comes from.'


class GroupReferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceGroup
        fields = ["id", "name"]
        read_only_fields = fields


class ConfigValueSerializer(serializers.ModelSerializer):
    """A value as stored: set on one group or on one device."""

    scope = serializers.SerializerMethodField()
    group = GroupReferenceSerializer(read_only=True, allow_null=True)
    device = serializers.SlugRelatedField(
        slug_field="device_id", read_only=True, allow_null=True, help_text="A device_id."
    )
    value = serializers.JSONField(help_text="Any JSON but null.")

    class Meta:
        model = ConfigValue
        fields = ["id", "scope", "group", "device", "key", "value", "version"]
        fields += ["updated_at", "updated_by"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=SCOPES))
    def get_scope(self, value: ConfigValue) -> str:
        return "group" if value.group_id else "device"


class ConfigValueCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """Body of create and preview: a key and value on exactly one group or device."""

    group = serializers.PrimaryKeyRelatedField(
        queryset=DeviceGroup.objects.all(),
        pk_field=serializers.UUIDField(),
        required=False,
        allow_null=True,
        help_text="A group's id. Give either group or device.",
        error_messages={"does_not_exist": "No group has id {pk_value}."},
    )
    device = serializers.SlugRelatedField(
        slug_field="device_id",
        queryset=Device.objects.all(),
        required=False,
        allow_null=True,
        help_text="A device_id. Give either group or device.",
        error_messages={"does_not_exist": "No device has device_id {value}."},
    )
    key = serializers.CharField(trim_whitespace=False, help_text="[A-Za-z][A-Za-z0-9_-]{0,63}")
    value = serializers.JSONField(allow_null=True, help_text="Any JSON but null.")

    def validate(self, attrs):
        if (attrs.get("group") is None) == (attrs.get("device") is None):
            raise serializers.ValidationError({"group": [ONE_SCOPE], "device": [ONE_SCOPE]})
        return attrs


class ConfigValueUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """PATCH body: a new value. The rest of what was read may be sent back, but key and scope
    cannot change (delete the value and create another)."""

    value = serializers.JSONField(allow_null=True, help_text="Any JSON but null.")
    key = serializers.CharField(required=False, help_text="Unchangeable.")
    group = serializers.JSONField(
        required=False, allow_null=True, help_text="Unchangeable: the group's id or {id, name}."
    )
    device = serializers.CharField(required=False, allow_null=True, help_text="Unchangeable.")
    id = serializers.IntegerField(read_only=True)
    scope = serializers.CharField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    updated_by = serializers.CharField(read_only=True)

    def validate(self, attrs):
        current: ConfigValue = self.instance
        sent = dict(attrs)
        if isinstance(sent.get("group"), dict):
            sent["group"] = sent["group"].get("id")
        if sent.get("group") is not None:
            sent["group"] = str(sent["group"])
        fixed = {
            "key": current.key,
            "group": str(current.group_id) if current.group_id else None,
            "device": current.device.device_id if current.device_id else None,
        }
        errors = {
            name: [f"{name} cannot change: delete this value and create another."]
            for name, now in fixed.items()
            if name in sent and sent[name] != now
        }
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class PreviewEntrySerializer(serializers.Serializer):
    value = serializers.JSONField()
    source = serializers.CharField(help_text=SOURCE_HELP)
    group_id = serializers.UUIDField(allow_null=True, help_text="Null for the device's own value.")
    version = serializers.IntegerField(
        allow_null=True, help_text="Null for the value this change would set."
    )


class PreviewDeviceSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    configuration = serializers.DictField(child=PreviewEntrySerializer())


class ConfigPreviewSerializer(serializers.Serializer):
    devices = serializers.IntegerField(help_text="How many devices the change reaches.")
    sample = PreviewDeviceSerializer(many=True, help_text="The first devices by device_id.")


class EffectiveEntrySerializer(PreviewEntrySerializer):
    version = serializers.IntegerField()
    state = serializers.ChoiceField(
        choices=ConfigState.choices,
        help_text="not_pushed, pending, applied, or drift (pushed more than "
        "CONFIG_DRIFT_MINUTES ago, not applied, by a device that has connected).",
    )
    applied = serializers.BooleanField(help_text="The device reports exactly this value.")
    applied_at = serializers.DateTimeField(allow_null=True)
    pushed_at = serializers.DateTimeField(
        allow_null=True, help_text="Null while this value has not been pushed yet."
    )
    reported = serializers.JSONField(
        allow_null=True, help_text="The config shadow's reported value; null if not reported."
    )


class DeviceConfigurationSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    configuration = serializers.DictField(child=EffectiveEntrySerializer())


class DriftKeySerializer(serializers.Serializer):
    key = serializers.CharField()
    desired = serializers.JSONField(help_text="The value pushed.")
    reported = serializers.JSONField(allow_null=True, help_text="Null if not reported.")
    version = serializers.IntegerField()
    pushed_at = serializers.DateTimeField()


class DriftedDeviceSerializer(serializers.ModelSerializer):
    keys = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = ["device_id", "status", "last_seen", "keys"]
        read_only_fields = fields

    @extend_schema_field(DriftKeySerializer(many=True))
    def get_keys(self, device: Device) -> list:
        details = self.context["details"].get(device.pk, [])
        return DriftKeySerializer(details, many=True).data


class DriftQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    group = serializers.PrimaryKeyRelatedField(
        queryset=DeviceGroup.objects.all(),
        pk_field=serializers.UUIDField(),
        required=False,
        help_text="Only this group's members.",
        error_messages={"does_not_exist": "No group has id {pk_value}."},
    )
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False)


class ConfigSummarySerializer(serializers.Serializer):
    applied = serializers.IntegerField(help_text="Configured members that applied every key.")
    pending = serializers.IntegerField(help_text="Still within the grace period.")
    drift = serializers.IntegerField(help_text="A key not applied after the grace period.")


class ConfigChangeSerializer(serializers.ModelSerializer):
    device = serializers.SlugRelatedField(
        slug_field="device_id", read_only=True, allow_null=True, help_text="A device_id."
    )
    old_value = serializers.JSONField(allow_null=True, help_text="Null when the key was set.")
    new_value = serializers.JSONField(allow_null=True, help_text="Null when it was removed.")

    class Meta:
        model = ConfigChange
        fields = ["id", "scope", "group", "device", "key", "old_value", "new_value", "version"]
        fields += ["actor", "created_at"]
        read_only_fields = fields
