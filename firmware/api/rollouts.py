"""REST for staged rollouts: create, list, describe (waves with counts per outcome, the failure
rate against the threshold, the timeline), the dry run, the actions, a manual gate's approval,
and a rollout's devices (paginated, filtered by outcome, wave and failure).

Views only translate: the rules are in firmware.rollouts.services (create, preview, start,
approve, cancel) and firmware.rollouts.control (pause, resume, abort, a gate's approval).
"""

from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from firmware.rollouts import control, services, states
from firmware.rollouts.choices import DeviceOutcome, Failure
from firmware.rollouts.models import Rollout, RolloutDevice, RolloutEvent, Wave
from fleetportal.actors import actor_for_request
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import FleetPermissions, HasPermissions

RULES = "Checked by firmware/rollouts/validation.py; ranges in docs/rollouts.md."


class RolloutCreateSerializer(serializers.Serializer):
    """A rollout's fields; every rule is the service's (400 naming the field)."""

    rollout_id = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=2028, required=False, allow_blank=True)
    kind = serializers.CharField(max_length=16, required=False, help_text="update | rollback")
    firmware = serializers.UUIDField(required=False)
    template = serializers.CharField(max_length=64, required=False)
    document_parameters = serializers.DictField(
        child=serializers.CharField(max_length=1024), required=False
    )
    targets = serializers.JSONField(help_text='{"devices": [...], "groups": [...]}')
    waves = serializers.JSONField(help_text="[{selector, count|percent|filter, …}]. " + RULES)
    rate = serializers.JSONField(required=False, help_text="AWS rolloutConfig. " + RULES)
    retry = serializers.JSONField(required=False, help_text=RULES)
    failure_policy = serializers.JSONField(required=False, help_text=RULES)
    deadlines = serializers.JSONField(required=False, help_text=RULES)
    health = serializers.JSONField(required=False, help_text=RULES)
    window = serializers.JSONField(required=False, help_text=RULES)
    download_concurrency = serializers.IntegerField(required=False, min_value=1)
    approval_required = serializers.BooleanField(required=False, default=False)
    rollback = serializers.JSONField(required=False, help_text="{reason, allowed_versions}")
    start_at = serializers.CharField(required=False, help_text="ISO 8601 with a zone, ahead.")


class WaveSerializer(serializers.ModelSerializer):
    outcomes = serializers.SerializerMethodField()

    class Meta:
        model = Wave
        fields = [
            "number", "selector", "count", "percent", "filter", "max_in_flight", "soak_minutes",
            "gate", "status", "device_count", "started_at", "finished_at", "soak_until",
            "promoted_at", "approved_by", "outcomes",
        ]  # fmt: skip
        read_only_fields = fields

    def get_outcomes(self, wave: Wave) -> dict[str, int]:
        counts = self.context.get("outcomes", {})
        return {outcome: counts.get((wave.pk, outcome), 0) for outcome in DeviceOutcome.values}


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RolloutEvent
        fields = ["at", "actor", "kind", "from_status", "to_status", "wave_number", "reason",
                  "details"]  # fmt: skip
        read_only_fields = fields


class RolloutSerializer(serializers.ModelSerializer):
    firmware = serializers.UUIDField(source="firmware_id", read_only=True, allow_null=True)
    template = serializers.SlugRelatedField(slug_field="template_id", read_only=True)

    class Meta:
        model = Rollout
        fields = [
            "rollout_id", "description", "kind", "status", "status_reason", "firmware",
            "template", "document_parameters", "rate_config", "retry_config",
            "failure_threshold_count", "failure_threshold_percent", "failure_min_finished",
            "failure_kinds", "failure_action", "start_deadline_minutes",
            "finish_deadline_minutes", "health_online_minutes", "health_bounds",
            "promotion_margin_percent", "window_cron", "window_duration_minutes",
            "window_timezone", "window_fallback_timezone", "download_concurrency", "bytes_served",
            "approval_required",
            "approved_by", "approved_at", "rollback_reason", "rollback_allowed_versions",
            "start_at", "created_at", "created_by", "started_at", "finished_at",
            "threshold_crossed_at", "halted_at",
        ]  # fmt: skip
        read_only_fields = fields


class RolloutDetailSerializer(RolloutSerializer):
    waves = serializers.SerializerMethodField()
    failure_rate = serializers.SerializerMethodField()
    events = EventSerializer(many=True, read_only=True)
    page = serializers.SerializerMethodField(help_text="The rollout's live page in the admin.")

    class Meta(RolloutSerializer.Meta):
        fields = [*RolloutSerializer.Meta.fields, "waves", "failure_rate", "events", "page"]
        read_only_fields = fields

    def get_page(self, rollout: Rollout) -> str:
        return reverse("admin:firmware_rollout_page", args=[rollout.rollout_id])

    @extend_schema(responses=WaveSerializer(many=True))
    def get_waves(self, rollout: Rollout) -> list[dict]:
        return WaveSerializer(rollout.waves.all(), many=True, context=self.context).data

    def get_failure_rate(self, rollout: Rollout) -> dict[str, float | None]:
        """Failed devices over finished ones (all waves), beside the threshold."""
        counts = self.context.get("outcomes", {})
        failed = sum(n for (_, o), n in counts.items() if o == DeviceOutcome.FAILED)
        finished = failed + sum(
            n
            for (_, o), n in counts.items()
            if o in (DeviceOutcome.UPDATED, DeviceOutcome.CANCELED)
        )
        percent = rollout.failure_threshold_percent
        return {
            "failed": failed,
            "finished": finished,
            "percent": round(100 * failed / finished, 2) if finished else None,
            "threshold_percent": float(percent) if percent is not None else None,
            "threshold_count": rollout.failure_threshold_count,
        }


class RolloutDeviceSerializer(serializers.ModelSerializer):
    device_id = serializers.CharField(source="device.device_id", read_only=True)
    wave = serializers.IntegerField(source="wave.number", read_only=True)

    class Meta:
        model = RolloutDevice
        fields = ["device_id", "wave", "position", "time_zone", "outcome", "failure", "reason",
                  "retries_used", "reported_at", "finished_at", "active"]  # fmt: skip
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class AbortSerializer(ReasonSerializer):
    force = serializers.BooleanField(required=False, default=False)


class CanRun(HasPermissions):
    perms = ("firmware.view_rollout", "firmware.run_rollout")


class CanApprove(HasPermissions):
    perms = ("firmware.view_rollout", "firmware.approve_rollout")


class NewestFirst(FleetCursorPagination):
    ordering = "-created_at"


def _outcomes(rollout: Rollout) -> dict[tuple[int, str], int]:
    """{(wave pk, outcome): devices} in one GROUP BY (served by rollout_device_wave_idx)."""
    rows = RolloutDevice.objects.filter(rollout=rollout).values("wave_id", "outcome")
    return {(r["wave_id"], r["outcome"]): r["n"] for r in rows.annotate(n=Count("pk"))}


def _detail(rollout: Rollout, code: int = status.HTTP_200_OK) -> Response:
    rollout = Rollout.objects.prefetch_related("waves", "events").get(pk=rollout.pk)
    body = RolloutDetailSerializer(rollout, context={"outcomes": _outcomes(rollout)}).data
    return Response(body, status=code)


class RolloutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staged rollouts: a firmware version (or template) to targets in waves."""

    queryset = Rollout.objects.select_related("template")
    serializer_class = RolloutSerializer
    permission_classes = [FleetPermissions]
    pagination_class = NewestFirst
    lookup_field = "rollout_id"
    lookup_value_regex = "[a-zA-Z0-9_-]{1,64}"

    def get_serializer_class(self):
        return RolloutDetailSerializer if self.action == "retrieve" else RolloutSerializer

    def retrieve(self, request, rollout_id=None):
        return _detail(self.get_object())

    @extend_schema(request=RolloutCreateSerializer, responses={201: RolloutDetailSerializer})
    def create(self, request):
        """A draft rollout; nothing runs until it is started (and approved)."""
        body = RolloutCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        roles = request.user.groups.values_list("name", flat=True)
        rollout = services.create_rollout(fields, actor=actor_for_request(request), roles=roles)
        return _detail(rollout, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["get", "post"])
    def preview(self, request, rollout_id=None):
        """The dry run: per wave the devices, the ones left out and why, the timeline."""
        return Response(services.preview(self.get_object(), now=timezone.now()))

    def _act(self, request, do, serializer=ReasonSerializer) -> Response:
        body = serializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rollout = do(self.get_object(), actor_for_request(request), **body.validated_data)
        except states.IllegalTransition as exc:
            raise services.WrongState(str(exc)) from exc
        return _detail(rollout)

    @extend_schema(request=ReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanRun])
    def start(self, request, rollout_id=None):
        return self._act(request, lambda r, a, reason: services.request_start(r, actor=a))

    @extend_schema(request=ReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanApprove])
    def approve(self, request, rollout_id=None):
        return self._act(request, lambda r, a, reason: services.approve(r, actor=a))

    @extend_schema(request=ReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanRun])
    def pause(self, request, rollout_id=None):
        return self._act(request, lambda r, a, reason: control.pause(r, actor=a, reason=reason))

    @extend_schema(request=ReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanRun])
    def resume(self, request, rollout_id=None):
        return self._act(request, lambda r, a, reason: control.resume(r, actor=a, reason=reason))

    @extend_schema(request=AbortSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanRun])
    def abort(self, request, rollout_id=None):
        def do(rollout, actor, reason, force):
            return control.abort(rollout, actor=actor, reason=reason, force=force)

        return self._act(request, do, AbortSerializer)

    @extend_schema(request=ReasonSerializer, responses=RolloutDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanRun])
    def cancel(self, request, rollout_id=None):
        return self._act(request, lambda r, a, reason: services.cancel(r, actor=a, reason=reason))


class WaveApproveView(generics.GenericAPIView):
    """A manual gate: an operator with approve_rollout promotes the next wave."""

    permission_classes = [CanApprove]
    serializer_class = WaveSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(request=None, responses=RolloutDetailSerializer)
    def post(self, request, rollout_id: str, number: int):
        wave = get_object_or_404(Wave, rollout__rollout_id=rollout_id, number=number)
        wave = control.approve_gate(wave, actor=actor_for_request(request))
        return _detail(wave.rollout)


class ResetRetriesView(generics.GenericAPIView):
    """A device's retry budget, whole again (a device that failed for good is retried)."""

    permission_classes = [CanRun]
    serializer_class = ReasonSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(request=ReasonSerializer, responses=RolloutDeviceSerializer)
    def post(self, request, rollout_id: str, device_id: str):
        entry = get_object_or_404(
            RolloutDevice.objects.select_related("device", "wave"),
            rollout__rollout_id=rollout_id,
            device__device_id=device_id,
        )
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry = control.reset_retries(
            entry, actor=actor_for_request(request), reason=body.validated_data["reason"]
        )
        return Response(RolloutDeviceSerializer(entry).data)


class DevicePosition(FleetCursorPagination):
    ordering = ("position", "id")


class RolloutDevicesView(generics.ListAPIView):
    """A rollout's devices in release order, filtered by ?outcome=, ?wave=, ?failure=."""

    serializer_class = RolloutDeviceSerializer
    permission_classes = [HasPermissions]
    pagination_class = DevicePosition
    filter_backends = []

    def get_permissions(self):
        allowed = HasPermissions()
        allowed.perms = ("firmware.view_rollout",)
        return [allowed]

    @extend_schema(
        parameters=[
            OpenApiParameter("outcome", str, enum=DeviceOutcome.values),
            OpenApiParameter("wave", int),
            OpenApiParameter("failure", str, enum=Failure.values),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RolloutDevice.objects.none()
        rollout = get_object_or_404(Rollout, rollout_id=self.kwargs["rollout_id"])
        rows = RolloutDevice.objects.filter(rollout=rollout).select_related("device", "wave")
        query = self.request.query_params
        if query.get("outcome") in DeviceOutcome.values:
            rows = rows.filter(outcome=query["outcome"])
        if query.get("failure") in Failure.values:
            rows = rows.filter(failure=query["failure"])
        if (wave := query.get("wave", "")).isdigit() and len(wave) < 6:
            rows = rows.filter(wave__number=int(wave))
        return rows
