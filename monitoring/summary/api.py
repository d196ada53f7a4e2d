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


class FleetDevices(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = counts("Devices per lifecycle status (decommissioned included).")


class FleetPresence(serializers.Serializer):
    online = serializers.IntegerField()
    offline = serializers.IntegerField()
    never_connected = serializers.IntegerField(help_text="In service, without a presence yet.")
    in_service = serializers.IntegerField()


class FleetVersion(serializers.Serializer):
    version = serializers.CharField(help_text='"" for devices that reported none.')
    devices = serializers.IntegerField()


class FleetFirmwareOfType(serializers.Serializer):
    device_type = serializers.CharField()
    devices = serializers.IntegerField()
    versions = FleetVersion(many=True, help_text="The 10 versions with most devices.")
    other = serializers.IntegerField(help_text="Devices on the other versions.")


class FleetAlerts(serializers.Serializer):
    open = serializers.IntegerField()
    by_severity = counts("Open alerts per severity (critical, warning, info).")


class FleetSample(serializers.Serializer):
    at = serializers.DateTimeField()
    ratio = serializers.FloatField()


class FleetOnlineRatio(serializers.Serializer):
    average = serializers.FloatField(allow_null=True)
    samples = FleetSample(many=True)


class FleetEvent(serializers.Serializer):
    device_id = serializers.CharField()
    event_type = serializers.CharField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()


class FleetOpenAlert(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.CharField()
    device_id = serializers.CharField()
    severity = serializers.CharField()
    raised_at = serializers.DateTimeField()
    acknowledged = serializers.BooleanField()


class FleetSummary(serializers.Serializer):
    computed_at = serializers.DateTimeField(help_text="When beat last counted the fleet.")
    devices = FleetDevices()
    presence = FleetPresence(help_text="In-service devices only.")
    firmware = FleetFirmwareOfType(many=True)
    certificates = counts("Live certificates expiring_7_days and expiring_30_days.")
    configuration = counts("drifting_devices: devices with a key in drift.")
    alerts = FleetAlerts()
    jobs = counts("Jobs IN_PROGRESS and SCHEDULED.")
    rollouts = counts("Rollouts scheduled, running and paused.")
    online_ratio_24h = FleetOnlineRatio()
    latest_events = FleetEvent(many=True)
    latest_alerts = FleetOpenAlert(many=True)


class ReadsFleetSummary(HasPermissions):
    perms = (VIEW,)


class FleetSummaryView(APIView):
    """The fleet at a glance: counts from beat's last refresh, newest events and alerts now."""

    permission_classes = [ReadsFleetSummary]

    @extend_schema(responses=FleetSummary, tags=["fleet"], operation_id="fleet_summary")
    def get(self, request):
        return Response(FleetSummary(services.current()).data)
