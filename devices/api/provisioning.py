"""Integrator API for provisioning templates (and their claim certificates) and bulk jobs.

Views call devices.provisioning and devices.bulk; the template rules live in
provisioning.template_errors, shared with the admin.
"""

import copy
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from devices import bulk, provisioning
from devices.models import BulkProvisioningJob, DeviceGroup, ProvisioningTemplate
from devices.validators import TEMPLATE_NAME_CHARS
from fleetportal import streaming
from fleetportal.actors import actor_for_request
from fleetportal.api.parsers import SafeJSONParser
from fleetportal.api.permissions import FleetPermissions, HasPermissions
from fleetportal.api.serializers import FleetModelSerializer, StrictFieldsMixin

# --- templates ----------------------------------------------------------------------------------


class ProvisioningTemplateSerializer(FleetModelSerializer):
    """A template; beyond its fields' validators, provisioning.template_errors applies."""

    group = serializers.SlugRelatedField(
        slug_field="name",
        queryset=DeviceGroup.objects.all(),
        allow_null=True,
        required=False,
        help_text="The static group provisioned devices join, by name.",
        error_messages={"does_not_exist": "No group is named {value}."},
    )
    device_configuration = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Flat string map returned to the device as deviceConfiguration.",
    )
    allowed_serial_numbers = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        help_text="If not empty, only these serial numbers may provision.",
    )

    class Meta:
        model = ProvisioningTemplate
        fields = [
            "id",
            "name",
            "description",
            "enabled",
            "device_type",
            "gateway",
            "group",
            "parameters",
            "device_id_template",
            "metadata_template",
            "device_configuration",
            "initial_status",
            "serial_number_parameter",
            "allowed_serial_numbers",
            "pre_provisioning_hook_url",
            "allow_create_keys",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        candidate = copy.copy(self.instance) if self.instance else ProvisioningTemplate()
        for name, value in attrs.items():
            setattr(candidate, name, value)
        errors = provisioning.template_errors(candidate)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def create(self, validated_data):
        return provisioning.save_template(ProvisioningTemplate(**validated_data))

    def update(self, instance, validated_data):
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return provisioning.save_template(instance)


class ClaimCertificateSerializer(serializers.Serializer):
    """A claim certificate and its key (schema only): returned once, the key is never stored."""

    certificateId = serializers.CharField()
    certificatePem = serializers.CharField()
    privateKey = serializers.CharField()
    caCertificates = serializers.CharField()


class CanIssueClaimCertificates(HasPermissions):
    perms = ("devices.view_provisioningtemplate", "devices.change_provisioningtemplate")


class ProvisioningTemplateViewSet(viewsets.ModelViewSet):
    """Fleet provisioning templates, addressed by name (device-protocol.md §3.2)."""

    queryset = ProvisioningTemplate.objects.select_related("group")
    serializer_class = ProvisioningTemplateSerializer
    permission_classes = [FleetPermissions]
    lookup_field = "name"
    lookup_value_regex = TEMPLATE_NAME_CHARS
    pagination_class = None

    def perform_destroy(self, instance):
        provisioning.delete_template(instance)

    @extend_schema(request=None, responses={201: ClaimCertificateSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="claim-certificate",
        permission_classes=[CanIssueClaimCertificates],
    )
    def claim_certificate(self, request, name=None):
        """Issue a claim certificate (CN claim.<name>): it may only provision by this template."""
        claim = provisioning.issue_claim_certificate(
            self.get_object(), actor=actor_for_request(request)
        )
        response = Response(
            {
                "certificateId": claim.certificate_id,
                "certificatePem": claim.cert_pem,
                "privateKey": claim.key_pem,
                "caCertificates": claim.chain_pem,
            },
            status=status.HTTP_201_CREATED,
        )
        response["Cache-Control"] = "no-store"  # the body holds a private key
        return response


# --- bulk jobs ----------------------------------------------------------------------------------


class BulkProvisioningJobSerializer(serializers.ModelSerializer):
    failed_rows = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField(help_text="Percent of rows processed.")

    class Meta:
        model = BulkProvisioningJob
        fields = [
            "id",
            "status",
            "total_rows",
            "processed_rows",
            "succeeded_rows",
            "failed_rows",
            "progress",
            "error",
            "created_by",
            "created_at",
            "finished_at",
            "bundle_downloaded_at",
        ]
        read_only_fields = fields

    def get_failed_rows(self, job) -> int:
        return job.processed_rows - job.succeeded_rows

    def get_progress(self, job) -> float:
        return round(100 * job.processed_rows / job.total_rows, 1) if job.total_rows else 100.0


class BulkProvisioningJobDetailSerializer(BulkProvisioningJobSerializer):
    """A job with its bad rows by line number and the devices it registered."""

    class Meta(BulkProvisioningJobSerializer.Meta):
        fields = [*BulkProvisioningJobSerializer.Meta.fields, "row_errors", "device_ids"]
        read_only_fields = fields


class BulkUploadSerializer(StrictFieldsMixin, serializers.Serializer):
    """The CSV as a file upload (multipart) or as a string in JSON."""

    file = serializers.FileField(required=False)
    csv = serializers.CharField(required=False, trim_whitespace=False)


class CsvParser(BaseParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return stream.read().decode("utf-8-sig") if stream else ""
        except UnicodeDecodeError:
            raise ParseError("The CSV must be UTF-8.") from None


class ZipRenderer(BaseRenderer):
    """Lets a client ask for the bundle with Accept: application/zip; errors stay JSON."""

    media_type = "application/zip"
    format = "zip"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


class CanDownloadBundles(HasPermissions):
    perms = ("devices.view_bulkprovisioningjob", "devices.add_bulkprovisioningjob")


class BulkProvisioningJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Bulk provisioning: POST a CSV (text/csv body, multipart `file`, or JSON `csv`)."""

    queryset = BulkProvisioningJob.objects.defer("csv_text")
    serializer_class = BulkProvisioningJobSerializer
    permission_classes = [FleetPermissions]
    parser_classes = [CsvParser, MultiPartParser, SafeJSONParser]

    def get_serializer_class(self):
        if self.action in ("retrieve", "create"):
            return BulkProvisioningJobDetailSerializer
        return super().get_serializer_class()

    @extend_schema(
        request={
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": BulkUploadSerializer,
            "application/json": BulkUploadSerializer,
        },
        responses={201: BulkProvisioningJobDetailSerializer},
    )
    def create(self, request):
        """Queue a CSV of devices; the header is checked now, the rows by a worker."""
        job = bulk.start_bulk_job(uploaded_csv(request), actor=actor_for_request(request))
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            409: OpenApiResponse(description="The job has not finished."),
            410: OpenApiResponse(description="The bundle was downloaded already."),
        }
    )
    @action(
        detail=True,
        permission_classes=[CanDownloadBundles],
        renderer_classes=[JSONRenderer, ZipRenderer],
    )
    def bundle(self, request, pk=None):
        """The credentials zip, once: certificates, new private keys, CA chain, manifest.csv."""
        job = self.get_object()
        chunks = bulk.stream_bundle(job, actor=actor_for_request(request))
        return zip_response(request, chunks, f"bulk-{job.pk}.zip")


def uploaded_csv(request) -> str:
    if isinstance(request.data, str):
        return request.data
    params = BulkUploadSerializer(data=request.data)
    params.is_valid(raise_exception=True)
    upload = params.validated_data.get("file")
    if upload is not None:
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ParseError("The CSV must be UTF-8.") from None
    if "csv" in params.validated_data:
        return params.validated_data["csv"]
    raise serializers.ValidationError({"csv": ["Send the CSV as text/csv, a file or `csv`."]})


def zip_response(request, chunks: Iterator[bytes], filename: str) -> StreamingHttpResponse:
    """Stream a zip being built, a chunk at a time (fleetportal.streaming)."""
    body = streaming.for_server(request, chunks, reads_database=True)
    response = StreamingHttpResponse(body, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # private keys
    return response
