"""The HTTP device API: each view is a thin caller of devices.credentials."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import credentials
from devices.device_api import schema  # noqa: F401  (registers the JWT scheme)
from devices.device_auth import DeviceJWTAuthentication, DevicePrincipal, DeviceRateThrottle
from fleetportal.actors import DEVICE
from fleetportal.api.serializers import StrictFieldsMixin


class IsDevice(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, DevicePrincipal)


class DeviceAPIView(APIView):
    """Devices only: a JWT signed with the device's own key, nothing else (no session, no token)."""

    authentication_classes = [DeviceJWTAuthentication]
    permission_classes = [IsDevice]
    throttle_classes = [DeviceRateThrottle]


class ThingAPIView(DeviceAPIView):
    """An endpoint under things/<thing>/: a device addresses only itself."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.user.device_id != kwargs["thing"]:
            raise exceptions.PermissionDenied(
                f"Device {request.user.device_id} may not address thing {kwargs['thing']}."
            )


class WhoAmISerializer(serializers.Serializer):
    device_id = serializers.CharField()
    status = serializers.CharField()
    certificateId = serializers.CharField(help_text="The certificate whose key signed the JWT.")


class RotateSerializer(StrictFieldsMixin, serializers.Serializer):
    certificateSigningRequest = serializers.CharField(
        trim_whitespace=False, help_text="PEM PKCS#10 request for the new key; CN = device_id."
    )


class RotatedSerializer(serializers.Serializer):
    certificateId = serializers.CharField()
    certificatePem = serializers.CharField()


class ConfirmSerializer(StrictFieldsMixin, serializers.Serializer):
    certificateId = serializers.CharField(
        max_length=64, help_text="The new certificate, now in use; the one it replaces is revoked."
    )


class ConfirmedSerializer(serializers.Serializer):
    certificateId = serializers.CharField()
    replaced = serializers.CharField(allow_null=True)


class WhoAmIView(DeviceAPIView):
    @extend_schema(responses=WhoAmISerializer)
    def get(self, request):
        """The device the JWT names, and the certificate it signed with."""
        device = request.user.device
        return Response(
            {
                "device_id": device.device_id,
                "status": device.status,
                "certificateId": request.user.credential.fingerprint,
            }
        )


class RotateView(DeviceAPIView):
    @extend_schema(request=RotateSerializer, responses={201: RotatedSerializer})
    def post(self, request):
        """A new certificate for a new key; the current one works until the new one is used."""
        params = RotateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        credential = credentials.request_rotation(
            request.user.device,
            params.validated_data["certificateSigningRequest"],
            actor=DEVICE,
            current=request.user.credential,
        )
        body = {
            "certificateId": credential.fingerprint,
            "certificatePem": credential.credential_value,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class ConfirmView(DeviceAPIView):
    @extend_schema(request=ConfirmSerializer, responses=ConfirmedSerializer)
    def post(self, request):
        """The device now uses the new certificate: the one it replaces is revoked."""
        params = ConfirmSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        credential = credentials.confirm_rotation(
            request.user.device, params.validated_data["certificateId"]
        )
        replaced = credential.replaces.fingerprint if credential.replaces_id else None
        return Response({"certificateId": credential.fingerprint, "replaced": replaced})
