"""The telemetry API's query parameters and answers."""

from django.conf import settings
from django.core import signing
from rest_framework import serializers

from monitoring.telemetry import queries

CURSOR_SALT = "monitoring.telemetry.points"


class MetricName(serializers.CharField):
    """A metric name as devices send it (DRF's CharField already refuses NUL)."""

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=settings.TELEMETRY_MAX_NAME_LENGTH, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return queries.check_name(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class AggregatesQuery(serializers.Serializer):
    period = serializers.ChoiceField(choices=list(queries.PERIODS), default="24h")
    name = MetricName()


class PointsQuery(serializers.Serializer):
    name = MetricName()
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False, max_length=500)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)

    def validate_cursor(self, value: str):
        """The last row of the previous page, signed so a client cannot forge one."""
        try:
            ts, name = signing.loads(value, salt=CURSOR_SALT)
            return serializers.DateTimeField().to_internal_value(ts), queries.check_name(name)
        except (signing.BadSignature, ValueError, TypeError, serializers.ValidationError) as exc:
            raise serializers.ValidationError("Invalid cursor.") from exc


def cursor_after(ts, name: str) -> str:
    return signing.dumps([ts.isoformat(), name], salt=CURSOR_SALT)


class SeriesSerializer(serializers.Serializer):
    """One name's buckets as columns (what a chart library takes): t in epoch seconds."""

    name = serializers.CharField()
    t = serializers.ListField(child=serializers.FloatField())
    avg = serializers.ListField(child=serializers.FloatField())
    min = serializers.ListField(child=serializers.FloatField())
    max = serializers.ListField(child=serializers.FloatField())
    count = serializers.ListField(child=serializers.IntegerField())


class AggregatesSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    period = serializers.CharField()
    bucket_seconds = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    series = SeriesSerializer(many=True)


class PointSerializer(serializers.Serializer):
    name = serializers.CharField()
    ts = serializers.DateTimeField()
    value = serializers.FloatField()


class PointsPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = PointSerializer(many=True)
