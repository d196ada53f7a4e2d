"""What every request must respect before any view sees it: the body size, and no NUL in the URL.

- One limit for every body (MAX_REQUEST_BODY_BYTES): a larger Content-Length is answered 413
  before the body is read, and Django's own reading stops at the same size
  (DATA_UPLOAD_MAX_MEMORY_SIZE; its RequestDataTooBig becomes the same 413 in the API).
- A NUL in the path or the query string (`/api/v1/devices/%00/`, an admin filter) is refused
  with a 400: PostgreSQL text cannot hold it, and every lookup with it would fail as a 500.
"""

from django.conf import settings
from django.http import JsonResponse

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"The request body is larger than the limit of {limit:,} bytes."}, status=413
    )


class RequestLimits:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.MAX_REQUEST_BODY_BYTES
        if request.method in BODY_METHODS and _content_length(request) > limit:
            return too_large(limit)
        if (
            "\x00" in request.path
            or "\x00" in request.META.get("QUERY_STRING", "")
            or any(
                "\x00" in key or any("\x00" in value for value in values)
                for key, values in request.GET.lists()
            )
        ):
            return JsonResponse(
                {"detail": "The URL contains a NUL character (%00), which nothing here can hold."},
                status=400,
            )
        return self.get_response(request)


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
