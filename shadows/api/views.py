"""Integrator REST: read shadows (with delta), set desired with an expected version, history.

The classic shadow's path segment is "~classic": every shadow name AWS allows
([$a-zA-Z0-9:_-]{1,64}) stays addressable, including a named shadow called "classic".
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.response import Response

from fleetportal.actors import actor_for_request
from fleetportal.api.pagination import FleetCursorPagination
from fleetportal.api.permissions import HasPermissions
from shadows import errors, services
from shadows.api.serializers import (
    SetDesiredSerializer,
    ShadowErrorSerializer,
    ShadowHistorySerializer,
    ShadowSerializer,
    ShadowSummarySerializer,
)
from shadows.document import ShadowError
from shadows.models import Shadow, ShadowHistory

# A 400 is either the body's field errors (DRF) or the shadow service's refusal, {code, message}.
INVALID_BODY = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Field errors ({"desired": ["..."]}) or the shadow service\'s {"code", "message"}.',
)


class CanViewShadows(HasPermissions):
    perms = ("devices.view_device", "shadows.view_shadow")


class CanViewShadowsOrChange(HasPermissions):
    def has_permission(self, request, view):
        perms = ("devices.view_device", "shadows.view_shadow")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            perms += ("shadows.change_shadow",)
        return request.user.is_authenticated and request.user.has_perms(perms)


class CanViewHistory(HasPermissions):
    perms = ("devices.view_device", "shadows.view_shadow", "shadows.view_shadowhistory")


def shadow_name(segment: str) -> str:
    return services.CLASSIC if segment == services.CLASSIC_SEGMENT else segment


class ShadowErrorsMixin:
    """A ShadowError raised by the service is answered as shadows.errors maps it."""

    def handle_exception(self, exc):
        if isinstance(exc, ShadowError):
            status, body = errors.http_error(exc)
            return Response(body, status=status)
        return super().handle_exception(exc)


class ShadowListView(ShadowErrorsMixin, generics.GenericAPIView):
    """The device's shadows (classic and named) that exist."""

    queryset = Shadow.objects.none()  # for the schema; rows come from the service
    serializer_class = ShadowSummarySerializer
    permission_classes = [CanViewShadows]
    pagination_class = None

    @extend_schema(responses={200: ShadowSummarySerializer(many=True), 404: ShadowErrorSerializer})
    def get(self, request, device_id: str):
        shadows = services.list_shadows(device_id)
        return Response(self.get_serializer(shadows, many=True).data)


class ShadowDetailView(ShadowErrorsMixin, generics.GenericAPIView):
    """One shadow with its delta; PATCH or POST merges desired state."""

    queryset = Shadow.objects.none()
    serializer_class = ShadowSerializer
    permission_classes = [CanViewShadowsOrChange]

    @extend_schema(responses={200: ShadowSerializer, 404: ShadowErrorSerializer})
    def get(self, request, device_id: str, name: str):
        shadow = services.find(device_id, shadow_name(name))
        return Response(ShadowSerializer(shadow).data)

    @extend_schema(
        request=SetDesiredSerializer,
        responses={
            200: ShadowSerializer,
            400: INVALID_BODY,
            404: ShadowErrorSerializer,
            409: ShadowErrorSerializer,
            413: ShadowErrorSerializer,
        },
    )
    def patch(self, request, device_id: str, name: str):
        body = SetDesiredSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.set_desired(
            device_id,
            shadow_name(name),
            body.validated_data["desired"],
            expected_version=body.validated_data.get("version"),
            actor=actor_for_request(request),
        )
        return Response(ShadowSerializer(result.shadow).data)

    @extend_schema(
        request=SetDesiredSerializer,
        responses={
            200: ShadowSerializer,
            400: INVALID_BODY,
            404: ShadowErrorSerializer,
            409: ShadowErrorSerializer,
            413: ShadowErrorSerializer,
        },
    )
    def post(self, request, device_id: str, name: str):
        return self.patch(request, device_id, name)


class HistoryPagination(FleetCursorPagination):
    ordering = "-id"


class ShadowHistoryView(ShadowErrorsMixin, generics.ListAPIView):
    """Every accepted version of the shadow, newest first, with the change each one made."""

    serializer_class = ShadowHistorySerializer
    permission_classes = [CanViewHistory]
    pagination_class = HistoryPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ShadowHistory.objects.none()
        # A missing device or shadow raises ShadowError: a 404 before any page is read.
        shadow = services.find_any(self.kwargs["device_id"], shadow_name(self.kwargs["name"]))
        return shadow.history.all()
