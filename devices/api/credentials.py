"""Integrator API for device certificates: issue, list, revoke. Views call devices.credentials."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from devices import credentials
from devices.models import Device, DeviceCredential
from fleetportal.actors import actor_for_request
from fleetportal.api.permissions import FleetPermissions, HasPermissions
from fleetportal.api.serializers import StrictFieldsMixin


class DeviceCredentialSerializer(serializers.ModelSerializer):
    """A certificate as integrators see it; private keys are never stored, so never listed."""

    certificateId = serializers.CharField(source="fingerprint", read_only=True)
    certificatePem = serializers.CharField(source="credential_value", read_only=True)
    replaces = serializers.CharField(
        source="replaces.fingerprint", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = DeviceCredential
        fields = [
            "certificateId",
            "serial_number",
            "common_name",
            "status",
            "not_before",
            "expires_at",
            "revoked",
            "revoked_at",
            "revocation_reason",
            "replaces",
            "first_used_at",
            "created_at",
            "certificatePem",
        ]
        read_only_fields = fields


class IssueCredentialSerializer(StrictFieldsMixin, serializers.Serializer):
    csr = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="PEM PKCS#10 request (preferred: the key never leaves the device). Without it "
        "the portal generates a key pair and returns the private key once.",
    )


class IssuedCredentialSerializer(DeviceCredentialSerializer):
    """The issue response (schema only): the certificate, the CA chain and maybe the key."""

    caCertificates = serializers.CharField(help_text="The issuing and root CA certificates, PEM.")
    privateKey = serializers.CharField(
        required=False, help_text="Only when no CSR was sent; returned this once, never stored."
    )

    class Meta(DeviceCredentialSerializer.Meta):
        fields = [*DeviceCredentialSerializer.Meta.fields, "caCertificates", "privateKey"]


class RevokeCredentialSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="An RFC 5280 reason (keyCompromise, superseded, cessationOfOperation, …) is "
        "also put in the CRL; other text is only recorded.",
    )


class CanRevokeCredentials(HasPermissions):
    perms = ("devices.view_devicecredential", "devices.change_devicecredential")


class DeviceCredentialViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The certificates of one device, newest first, addressed by certificateId."""

    queryset = DeviceCredential.objects.select_related("replaces")
    serializer_class = DeviceCredentialSerializer
    permission_classes = [FleetPermissions]

    def get_device(self) -> Device:
        return get_object_or_404(Device, device_id=self.kwargs["device_id"])

    def get_queryset(self):
        # No lookup of the device here: the permission check calls this before the view runs.
        device_id = self.kwargs.get("device_id")
        return super().get_queryset().filter(device__device_id=device_id).order_by("-created_at")

    def list(self, request, device_id=None):
        """The device's certificates, newest first (never a private key: none is kept)."""
        self.get_device()
        return super().list(request)

    @extend_schema(request=IssueCredentialSerializer, responses={201: IssuedCredentialSerializer})
    def create(self, request, device_id=None):
        """Issue a certificate (CN = device_id); a registered device moves to provisioning."""
        params = IssueCredentialSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        credential, private_key = credentials.issue_credential(
            self.get_device(),
            csr_pem=params.validated_data.get("csr"),
            actor=actor_for_request(request),
        )
        body = {
            **self.get_serializer(credential).data,
            "caCertificates": credentials.load_authority().chain_pem,
        }
        if private_key is not None:
            body["privateKey"] = private_key
        response = Response(body, status=status.HTTP_201_CREATED)
        # The body may hold a private key: no cache, proxy or browser may keep a copy.
        response["Cache-Control"] = "no-store"
        return response

    def get_permissions(self):
        if self.action == "revoke":
            return [CanRevokeCredentials()]
        return super().get_permissions()

    @extend_schema(request=RevokeCredentialSerializer, responses=DeviceCredentialSerializer)
    def revoke(self, request, device_id=None, certificate_id=None):
        """Revoke the certificate: the broker refuses it and drops the device's session."""
        params = RevokeCredentialSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        credential = credentials.revoke_credential(
            get_object_or_404(self.get_queryset(), fingerprint=certificate_id.lower()),
            actor=actor_for_request(request),
            reason=params.validated_data.get("reason", ""),
        )
        return Response(self.get_serializer(credential).data)
