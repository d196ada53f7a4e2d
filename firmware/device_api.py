"""The HTTP device API for firmware, under /device/v1/firmware/:

    GET /device/v1/firmware/signing-key          the public key that verifies manifests (no login)
    GET /device/v1/firmware/<id>/artifact        the artifact, with the device's JWT, for the
                                                 firmware of a job execution the device has pending
    GET /device/v1/firmware/<id>/download?…      the artifact by a signed URL (downloads.signed_url)

Both downloads answer Range requests (206/416) and stream from the artifact storage.
"""

from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import re_path
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.device_api.views import DeviceAPIView
from firmware import catalog, downloads, signing
from firmware.models import FirmwareVersion

UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class SigningKeySerializer(serializers.Serializer):
    key_id = serializers.CharField(help_text="First 16 hex of SHA-256 of the public key's DER.")
    algorithm = serializers.CharField()
    public_key_pem = serializers.CharField()


def signing_key_response() -> Response:
    try:
        return Response(signing.public_key_document())
    except signing.SigningKeyError as exc:
        raise catalog.SigningUnavailable(str(exc)) from exc


SIGNING_KEY_RESPONSES = {
    200: SigningKeySerializer,
    503: OpenApiResponse(OpenApiTypes.OBJECT, description="No signing key yet."),
}


class DeviceSigningKeyView(APIView):
    """The public key devices verify firmware manifests with: public, no credentials needed."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="device_firmware_signing_key", responses=SIGNING_KEY_RESPONSES)
    def get(self, request):
        """The firmware signing key's public key and key id, for devices to pin."""
        return signing_key_response()


ARTIFACT_RESPONSES = {
    (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, "The whole file."),
    (206, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, "The range asked."),
    302: OpenApiResponse(description="Hosted elsewhere: Location is the operator's file_url."),
    416: OpenApiResponse(description="The range starts past the end (Content-Range: */size)."),
    503: OpenApiResponse(description="The rollout's download cap is reached: see Retry-After."),
}


class DeviceArtifactView(DeviceAPIView):
    @extend_schema(operation_id="device_firmware_artifact", responses=ARTIFACT_RESPONSES)
    def get(self, request, pk: str):
        """The artifact of a firmware version a job asks this device to install (Range works)."""
        firmware = get_object_or_404(FirmwareVersion, pk=pk)
        device = request.user.device
        fetch = downloads.may_fetch(device, firmware)
        if fetch is None:
            raise exceptions.PermissionDenied(
                "This firmware is not the firmware of a job execution pending on this device."
            )
        if not firmware.artifact.name:
            return HttpResponseRedirect(firmware.file_url)
        return downloads.serve(request, firmware, rollout=fetch.rollout, device_id=device.device_id)


@require_safe
def signed_download(request, pk: str):
    """The artifact by a signed URL; 403 once expired or if any part was changed."""
    try:
        downloads.check_signed(request.path, request.GET)
    except downloads.DownloadRefused as refusal:
        return JsonResponse({"detail": refusal.message}, status=403)
    firmware = get_object_or_404(FirmwareVersion, pk=pk)
    if not firmware.artifact.name:
        return HttpResponseRedirect(firmware.file_url)
    rollout = downloads.signed_rollout(request.GET)
    return downloads.serve(
        request, firmware, rollout=rollout, device_id=request.GET.get("device", "")
    )


urlpatterns = [
    re_path(
        r"^firmware/signing-key/?$",
        DeviceSigningKeyView.as_view(),
        name="device-firmware-signing-key",
    ),
    re_path(
        rf"^firmware/(?P<pk>{UUID})/artifact/?$",
        DeviceArtifactView.as_view(),
        name="device-firmware-artifact",
    ),
    re_path(
        rf"^firmware/(?P<pk>{UUID})/download$", signed_download, name="firmware-signed-download"
    ),
]
