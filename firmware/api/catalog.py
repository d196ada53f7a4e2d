"""REST for the firmware catalog: /api/v1/firmware/ (list, get, upload, delete) and the signing
key. Views call firmware.catalog; its refusals map to 400/409/503 in fleetportal.api.exceptions."""

from django.contrib.admin.models import ADDITION, DELETION, LogEntry
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from firmware import catalog, downloads
from firmware.device_api import SIGNING_KEY_RESPONSES, UUID, signing_key_response
from firmware.models import FirmwareVersion
from fleetportal.actors import actor_for_request
from fleetportal.api.parsers import SafeJSONParser
from fleetportal.api.permissions import FleetPermissions, HasPermissions
from fleetportal.api.serializers import StrictFieldsMixin

MAX_INT = 2**31 - 1


class FirmwareVersionSerializer(serializers.ModelSerializer):
    signed_manifest = serializers.SerializerMethodField(
        help_text="The exact text the signature covers: the manifest as canonical JSON."
    )
    download_url = serializers.SerializerMethodField(
        help_text="A signed URL (valid FIRMWARE_URL_SECONDS), or the operator's file_url."
    )

    class Meta:
        model = FirmwareVersion
        fields = [
            "id",
            "device_type",
            "version",
            "security_version",
            "hardware_versions",
            "file_url",
            "file_size",
            "checksum",
            "release_notes",
            "is_latest",
            "manifest",
            "signed_manifest",
            "manifest_signature",
            "signing_key_id",
            "download_url",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    def get_signed_manifest(self, firmware) -> str:
        return catalog.signed_manifest(firmware)

    def get_download_url(self, firmware) -> str:
        return downloads.signed_url(firmware, request=self.context.get("request"))


class FirmwareUploadSerializer(StrictFieldsMixin, serializers.Serializer):
    device_type = serializers.CharField(max_length=64)
    version = serializers.CharField(max_length=64, help_text="Dotted numbers, e.g. 1.10.0.")
    security_version = serializers.IntegerField(
        min_value=0, max_value=MAX_INT, default=0, help_text="Never lower than the type's highest."
    )
    hardware_versions = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100
    )
    release_notes = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The image; or give file_url instead."
    )
    file_url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    file_size = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="With file_url only."
    )
    checksum = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="SHA-256 (hex); checked."
    )

    def artifact(self) -> catalog.Artifact:
        data = self.validated_data
        return catalog.Artifact(
            file=data.get("file"),
            file_url=data.get("file_url", ""),
            file_size=data.get("file_size"),
            checksum=data.get("checksum", ""),
        )


class FirmwareVersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The firmware catalog: versions per device type, newest first, with signed manifests.

    Create uploads an image (multipart) or registers one hosted elsewhere (file_url, file_size,
    checksum); there is no update: a signed version never changes. Delete is refused (409) while
    a job uses the version.
    """

    queryset = FirmwareVersion.objects.all()
    serializer_class = FirmwareVersionSerializer
    permission_classes = [FleetPermissions]
    parser_classes = [MultiPartParser, FormParser, SafeJSONParser]
    filterset_fields = ["device_type", "is_latest"]
    lookup_value_regex = UUID

    def get_serializer_class(self):
        return FirmwareUploadSerializer if self.action == "create" else FirmwareVersionSerializer

    @extend_schema(
        request=FirmwareUploadSerializer,
        responses={201: FirmwareVersionSerializer, 503: SIGNING_KEY_RESPONSES[503]},
    )
    def create(self, request, *args, **kwargs):
        params = FirmwareUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        firmware = catalog.add_version(
            device_type=data["device_type"],
            version=data["version"],
            artifact=params.artifact(),
            actor=actor_for_request(request),
            security_version=data["security_version"],
            hardware_versions=data.get("hardware_versions", []),
            release_notes=data.get("release_notes", ""),
        )
        _log(request, firmware, ADDITION)
        body = FirmwareVersionSerializer(firmware, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        with transaction.atomic():
            _log(self.request, instance, DELETION)
            catalog.delete_version(instance)


class CanViewFirmware(HasPermissions):
    perms = ("firmware.view_firmwareversion",)


class SigningKeyView(APIView):
    permission_classes = [CanViewFirmware]

    @extend_schema(responses=SIGNING_KEY_RESPONSES)
    def get(self, request):
        """The public key that verifies firmware manifests, with the key id devices pin."""
        return signing_key_response()


def _log(request, firmware: FirmwareVersion, action_flag: int) -> None:
    """The admin's history records API changes too, with the user who made them."""
    message = [{"added": {}}] if action_flag == ADDITION else ""
    LogEntry.objects.log_actions(
        request.user.pk, [firmware], action_flag, change_message=message, single_object=True
    )
