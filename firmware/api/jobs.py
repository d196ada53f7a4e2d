"""REST for jobs, mirroring AWS IoT Jobs' control plane in this API's snake_case: CreateJob,
ListJobs, DescribeJob (with job_process_details), CancelJob, the executions of a job and of a
device, CancelJobExecution, and job templates.

Views only translate: every rule is in firmware.jobs (and firmware.configs), whose refusals are
400 {field: [messages]} or a JobError mapped in fleetportal/api/exceptions.py.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from devices import device_list
from devices.models import Device
from firmware import jobs
from firmware.choices import TargetSelection
from firmware.models import Job, JobExecution, JobTemplate, validate_job_id
from fleetportal.actors import actor_for_request
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import FleetPermissions, HasPermissions

CONFIG_HELP = "Validated against AWS IoT Jobs' ranges; see firmware/configs.py."


class TargetsSerializer(serializers.Serializer):
    """Devices and groups by name, or a filter of the device list (alone)."""

    devices = serializers.ListField(child=serializers.CharField(max_length=128), required=False)
    groups = serializers.ListField(child=serializers.CharField(max_length=255), required=False)
    filter = serializers.CharField(
        max_length=device_list.MAX_QUERY,
        required=False,
        help_text="The device list's query string, e.g. "
        "`device_type=sensor&firmware_version=1.9.3&online=yes` (its filters and `q` search, "
        "as in the admin's URL). The devices in service it matches when the job is created are "
        "its targets (a snapshot: SNAPSHOT target selection only); at most "
        "FLEETPORTAL_BULK_ACTION_MAX_DEVICES. Not with devices or groups.",
    )


class JobCreateSerializer(serializers.Serializer):
    """CreateJob's fields. Give exactly one of document, firmware or template."""

    job_id = serializers.CharField(max_length=64, validators=[validate_job_id])
    description = serializers.CharField(max_length=2028, required=False, allow_blank=True)
    targets = TargetsSerializer()
    document = serializers.JSONField(required=False, help_text="Any JSON object ≤ 32 KB.")
    firmware = serializers.UUIDField(required=False, help_text="A firmware version's id.")
    template = serializers.CharField(max_length=64, required=False)
    document_parameters = serializers.DictField(
        child=serializers.CharField(max_length=1024), required=False
    )
    target_selection = serializers.ChoiceField(TargetSelection.choices, required=False)
    rollout = serializers.JSONField(required=False, help_text=CONFIG_HELP)
    abort = serializers.JSONField(required=False, help_text=CONFIG_HELP)
    timeout = serializers.JSONField(required=False, help_text=CONFIG_HELP)
    retry = serializers.JSONField(required=False, help_text=CONFIG_HELP)
    scheduling = serializers.JSONField(required=False, help_text=CONFIG_HELP)
    allow_downgrade = serializers.BooleanField(required=False, default=False)
    downgrade_reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class JobSerializer(serializers.ModelSerializer):
    targets = serializers.SerializerMethodField()
    template = serializers.SlugRelatedField(slug_field="template_id", read_only=True)
    rollout = serializers.JSONField(source="rollout_config")
    abort = serializers.JSONField(source="abort_config")
    timeout = serializers.JSONField(source="timeout_config")
    retry = serializers.JSONField(source="retry_config")
    scheduling = serializers.JSONField(source="scheduling_config")

    class Meta:
        model = Job
        fields = [
            "job_id", "description", "status", "target_selection", "targets", "document",
            "firmware", "template", "document_parameters", "rollout", "abort", "timeout",
            "retry", "scheduling", "downgrade_allowed_by", "downgrade_reason", "force_canceled",
            "comment", "reason_code", "canceled_by", "created_by", "created_at", "updated_at",
            "completed_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(TargetsSerializer)
    def get_targets(self, job: Job) -> dict[str, Any]:
        targets: dict[str, Any] = {
            "devices": [device.device_id for device in job.target_devices.all()],
            "groups": [group.name for group in job.target_groups.all()],
        }
        if job.target_filter:
            targets["filter"] = device_list.query_string(job.target_filter)
        return targets


class JobProcessDetailsSerializer(serializers.Serializer):
    number_of_canceled_things = serializers.IntegerField()
    number_of_succeeded_things = serializers.IntegerField()
    number_of_failed_things = serializers.IntegerField()
    number_of_rejected_things = serializers.IntegerField()
    number_of_queued_things = serializers.IntegerField()
    number_of_in_progress_things = serializers.IntegerField()
    number_of_removed_things = serializers.IntegerField()
    number_of_timed_out_things = serializers.IntegerField()
    number_of_awaiting_confirmation_things = serializers.IntegerField(
        help_text="Firmware executions reported SUCCEEDED whose new version is not reported yet."
    )
    number_of_unreleased_things = serializers.IntegerField(
        help_text="Targets the rollout has not released yet."
    )


class JobDetailSerializer(JobSerializer):
    job_process_details = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "job_process_details"]
        read_only_fields = fields

    @extend_schema(responses=JobProcessDetailsSerializer)
    def get_job_process_details(self, job: Job) -> dict[str, int]:
        return jobs.job_process_details(job)


class JobCancelSerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)
    comment = serializers.CharField(max_length=2028, required=False, allow_blank=True)
    reason_code = serializers.CharField(max_length=128, required=False, allow_blank=True)


class ExecutionSerializer(serializers.ModelSerializer):
    job_id = serializers.CharField(source="job.job_id", read_only=True)
    device_id = serializers.CharField(source="device.device_id", read_only=True)

    class Meta:
        model = JobExecution
        fields = [
            "job_id", "device_id", "execution_number", "status", "status_details",
            "version_number", "queued_at", "started_at", "last_updated_at",
            "in_progress_deadline", "step_deadline", "confirmed_at", "confirmation_deadline",
        ]  # fmt: skip
        read_only_fields = fields


class ExecutionCancelSerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)
    expected_version = serializers.IntegerField(required=False, min_value=1)
    status_details = serializers.DictField(
        child=serializers.CharField(max_length=1024), required=False
    )


class JobTemplateSerializer(serializers.ModelSerializer):
    """CreateJobTemplate: a document and default configs; scheduling_config holds
    maintenance_windows only (firmware.configs)."""

    class Meta:
        model = JobTemplate
        fields = [
            "template_id", "description", "document", "rollout_config", "abort_config",
            "timeout_config", "retry_config", "scheduling_config", "created_at", "created_by",
        ]  # fmt: skip
        read_only_fields = ["created_at", "created_by"]

    def validate_document(self, value):
        try:
            return jobs.check_document(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["document"]) from exc

    def validate(self, data):
        if errors := jobs.check_template_configs(data):
            raise serializers.ValidationError(errors)
        return data


class CanCancelJobs(HasPermissions):
    perms = ("firmware.view_job", "firmware.cancel_job")


class CanViewExecutions(HasPermissions):
    perms = ("firmware.view_jobexecution",)


class NewestFirst(FleetCursorPagination):
    ordering = "-created_at"


class ExecutionOrder(FleetCursorPagination):
    ordering = "-queued_at"


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs (AWS IoT Jobs): create, list, describe and cancel."""

    queryset = Job.objects.select_related("template").prefetch_related(
        "target_devices", "target_groups"
    )
    serializer_class = JobSerializer
    permission_classes = [FleetPermissions]
    pagination_class = NewestFirst
    lookup_field = "job_id"
    lookup_value_regex = "[a-zA-Z0-9_-]{1,64}"

    def get_serializer_class(self):
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    @extend_schema(request=JobCreateSerializer, responses={201: JobDetailSerializer})
    def create(self, request):
        """CreateJob: targets are fixed now; the engine releases executions at the rate."""
        body = JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = {k: v for k, v in body.validated_data.items() if v is not None}
        data["targets"] = dict(data["targets"])
        job = jobs.create_job(data, actor=actor_for_request(request))
        return Response(JobDetailSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=JobCancelSerializer, responses=JobDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[CanCancelJobs])
    def cancel(self, request, job_id=None):
        """CancelJob: queued executions are cancelled; in-progress ones too with force."""
        body = JobCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = jobs.cancel_job(
            self.get_object(), actor=actor_for_request(request), **body.validated_data
        )
        return Response(JobDetailSerializer(job).data)


class JobExecutionsView(generics.ListAPIView):
    """ListJobExecutionsForJob: every attempt, newest first."""

    serializer_class = ExecutionSerializer
    permission_classes = [CanViewExecutions]
    pagination_class = ExecutionOrder
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return JobExecution.objects.none()
        job = get_object_or_404(Job, job_id=self.kwargs["job_id"])
        return JobExecution.objects.filter(job=job).select_related("job", "device")


class DeviceJobExecutionsView(JobExecutionsView):
    """ListJobExecutionsForThing: the device's executions of every job, newest first."""

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return JobExecution.objects.none()
        device = get_object_or_404(Device, device_id=self.kwargs["device_id"])
        return JobExecution.objects.filter(device=device).select_related("job", "device")


class ExecutionCancelView(generics.GenericAPIView):
    """CancelJobExecution: the device's latest attempt at the job."""

    serializer_class = ExecutionCancelSerializer
    permission_classes = [CanCancelJobs]
    pagination_class = None
    filter_backends = []

    @extend_schema(request=ExecutionCancelSerializer, responses=ExecutionSerializer)
    def post(self, request, device_id: str, job_id: str):
        execution = (
            JobExecution.objects.filter(job__job_id=job_id, device__device_id=device_id)
            .order_by("-execution_number")
            .first()
        )
        if execution is None:
            raise Http404
        body = ExecutionCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        execution = jobs.cancel_execution(
            execution, actor=actor_for_request(request), **body.validated_data
        )
        return Response(ExecutionSerializer(execution).data)


class JobTemplateViewSet(viewsets.ModelViewSet):
    """Job templates: a document with ${parameters.name} placeholders and default configs."""

    queryset = JobTemplate.objects.all()
    serializer_class = JobTemplateSerializer
    permission_classes = [FleetPermissions]
    pagination_class = NewestFirst
    lookup_field = "template_id"
    lookup_value_regex = "[a-zA-Z0-9_-]{1,64}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        serializer.save(created_by=actor_for_request(self.request))
