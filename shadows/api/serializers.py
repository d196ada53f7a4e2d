from rest_framework import serializers

from shadows import services
from shadows.models import Shadow, ShadowHistory


def api_name(name: str) -> str:
    return name or services.CLASSIC_SEGMENT


class ShadowSummarySerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField(help_text='"~classic" for the classic shadow.')

    class Meta:
        model = Shadow
        fields = ["name", "version", "updated_at"]

    def get_name(self, shadow: Shadow) -> str:
        return api_name(shadow.name)


class ShadowSerializer(ShadowSummarySerializer):
    desired = serializers.JSONField(source="desired_state")
    reported = serializers.JSONField(source="reported_state")
    delta = serializers.SerializerMethodField()

    class Meta:
        model = Shadow
        fields = ["name", "version", "desired", "reported", "delta", "metadata", "updated_at"]

    def get_delta(self, shadow: Shadow) -> dict:
        return services.delta_of(shadow)


class SetDesiredSerializer(serializers.Serializer):
    desired = serializers.JSONField(
        allow_null=True,
        help_text="Merged into desired: null leaves delete keys; null here clears desired.",
    )
    version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="Expected current version; 409 when the shadow has moved on.",
    )


class ShadowHistorySerializer(serializers.ModelSerializer):
    change = serializers.JSONField(
        help_text="The request's state as sent: a JSON merge patch of desired/reported."
    )
    state = serializers.JSONField(help_text="desired and reported after this version.")

    class Meta:
        model = ShadowHistory
        fields = ["version", "operation", "change", "state", "actor", "created_at"]


class ShadowErrorSerializer(serializers.Serializer):
    code = serializers.IntegerField()
    message = serializers.CharField()
