"""GET /api/v1/fleet/summary/: the fleet summary for integrators (the page's figures)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from fleetportal.api.permissions import HasPermissions
from monitoring.summary import services

VIEW = "monitoring.view_fleetsnapshot"


def counts(help_text: str) -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=help_text)


class Devices(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = counts("Devices per lifecycle status (decommissioned included).")


class Presence(serializers.Serializer):
    online = serializers.IntegerField()
    offline = serializers.IntegerField()
    never_connected = serializers.IntegerField(help_text="In service, without a presence yet.")
    in_service = serializers.IntegerField()


class Version(serializers.Serializer):
    version = serializers.CharField(help_text='"" for devices that reported none.')
    devices = serializers.IntegerField()


class FirmwareOfType(serializers.Serializer):
    device_type = serializers.CharField()
    devices = serializers.IntegerField()
    versions = Version(many=True, help_text="The 10 versions with most devices.")
    other = serializers.IntegerField(help_text="Devices on the other versions.")


class Alerts(serializers.Serializer):
    open = serializers.IntegerField()
    by_severity = counts("Open alerts per severity (critical, warning, info).")


class Sample(serializers.Serializer):
    at = serializers.DateTimeField()
    ratio = serializers.FloatField()


class OnlineRatio(serializers.Serializer):
    average = serializers.FloatField(allow_null=True)
    samples = Sample(many=True)


class Event(serializers.Serializer):
    device_id = serializers.CharField()
    event_type = serializers.CharField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()


class OpenAlert(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.CharField()
    device_id = serializers.CharField()
    severity = serializers.CharField()
    raised_at = serializers.DateTimeField()
    acknowledged = serializers.BooleanField()


class FleetSummary(serializers.Serializer):
    computed_at = serializers.DateTimeField(help_text="When beat last counted the fleet.")
    devices = Devices()
    presence = Presence(help_text="In-service devices only.")
    firmware = FirmwareOfType(many=True)
    certificates = counts("Live certificates expiring_7_days and expiring_30_days.")
    configuration = counts("drifting_devices: devices with a key in drift.")
    alerts = Alerts()
    jobs = counts("Jobs IN_PROGRESS and SCHEDULED.")
    rollouts = counts("Rollouts scheduled, running and paused.")
    online_ratio_24h = OnlineRatio()
    latest_events = Event(many=True)
    latest_alerts = OpenAlert(many=True)


class ReadsFleetSummary(HasPermissions):
    perms = (VIEW,)


class FleetSummaryView(APIView):
    """The fleet at a glance: counts from beat's last refresh, newest events and alerts now."""

    permission_classes = [ReadsFleetSummary]

    @extend_schema(responses=FleetSummary, tags=["fleet"], operation_id="fleet_summary")
    def get(self, request):
        return Response(FleetSummary(services.current()).data)
