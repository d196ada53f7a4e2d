"""Maps domain errors to HTTP responses, in one place."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from fleetportal.errors import DomainError
from fleetportal.request_limits import too_large


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return too_large(settings.MAX_REQUEST_BODY_BYTES)
    if isinstance(exc, DjangoValidationError):
        return Response(as_serializer_error(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        return Response({exc.field: [exc.message], "code": exc.code}, status=exc.http_status)
    return drf_exception_handler(exc, context)
