"""The HTTP device API for shadows: AWS's data plane (device-protocol.md §1.9) under /device/v1/.

    GET    /device/v1/things/{thing}/shadow?name=<shadow>   the document with its delta
    POST   /device/v1/things/{thing}/shadow?name=<shadow>   body = the raw update request document
    DELETE /device/v1/things/{thing}/shadow?name=<shadow>   {version, timestamp}

Omit `name` for the classic shadow. Devices authenticate with their JWT only and address only
their own thing. The same service as the MQTT bridge serves each request, so the replies fan out
over MQTT (accepted, documents, delta) and every refusal is AWS's error document {code, message}
with the code as the HTTP status.
"""

from django.urls import re_path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from devices.device_api.views import ThingAPIView
from fleetportal.actors import DEVICE
from shadows import errors, services
from shadows.document import PayloadTooLarge, ShadowError

# AWS's largest shadow request payload; the stored state has its own 8 KB limit (413 too).
MAX_BODY_BYTES = 128 * 1024


class RawBody(BaseParser):
    """Accept any Content-Type: the body is read raw and parsed by the shadow service."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


NAME = OpenApiParameter(
    "name", str, OpenApiParameter.QUERY, description="The named shadow; omit for the classic one."
)
THING = OpenApiParameter("thing", str, OpenApiParameter.PATH, description="The device_id.")
ERRORS = dict.fromkeys((400, 401, 403, 404, 409, 413, 415), OpenApiTypes.OBJECT)


class ThingShadowView(ThingAPIView):
    parser_classes = [RawBody]

    def handle_exception(self, exc):
        """Authentication and permission refusals as AWS error documents too."""
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.APIException):
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            response.data = {"code": response.status_code, "message": detail}
        return response

    @extend_schema(parameters=[THING, NAME], responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def get(self, request, thing: str):
        """GetThingShadow: the whole document with its delta."""
        return self._serve(lambda now: services.get(self._device, self._name, now=now))

    @extend_schema(
        parameters=[THING, NAME],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request, thing: str):
        """UpdateThingShadow: body = {state: {desired?, reported?}, version?, clientToken?}."""
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            return self._error(PayloadTooLarge(size=length), timezone.now())
        body = request.body
        actor = f"{DEVICE}:{thing}"
        return self._serve(
            lambda now: services.update(self._device, self._name, body, actor=actor, now=now)
        )

    @extend_schema(parameters=[THING, NAME], responses={200: OpenApiTypes.OBJECT, **ERRORS})
    def delete(self, request, thing: str):
        """DeleteThingShadow: {version, timestamp}; the version carries on if re-created."""
        actor = f"{DEVICE}:{thing}"
        return self._serve(
            lambda now: services.delete(self._device, self._name, actor=actor, now=now)
        )

    @property
    def _device(self):
        return self.request.user.device

    @property
    def _name(self) -> str:
        return self.request.query_params.get("name", services.CLASSIC)

    def _serve(self, operation) -> Response:
        now = timezone.now()
        try:
            result = operation(now)
        except ShadowError as error:
            return self._error(error, now)
        if isinstance(result, services.UpdateResult):
            result = result.accepted
        return Response(result)

    def _error(self, error: ShadowError, now) -> Response:
        status, body = errors.http_error(error, now=now)
        return Response(body, status=status)


urlpatterns = [
    # The trailing slash is optional: a device's POST must not depend on following a redirect.
    re_path(r"^things/(?P<thing>[^/]+)/shadow/?$", ThingShadowView.as_view(), name="device-shadow"),
]
