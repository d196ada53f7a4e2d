"""What every request must respect before any view sees it: the body size, and no NUL in the URL.

- One limit for every body (MAX_REQUEST_BODY_BYTES): a larger Content-Length is answered 413
  before the body is read, and Django's own reading stops at the same size
  (DATA_UPLOAD_MAX_MEMORY_SIZE; its RequestDataTooBig becomes the same 413 in the API).
- A NUL in the path or the query string (`/api/v1/devices/%00/`, an admin filter) is refused
  with a 400: PostgreSQL text cannot hold it, and every lookup with it would fail as a 500.
- Upload endpoints an app names (`allow_larger_bodies`, from its AppConfig.ready()) have their
  own limit instead (firmware images are larger than any JSON body). Their file parts stream to
  temporary files, never into memory; the rest of the body keeps the one limit.
"""

import re

from django.conf import settings
from django.http import JsonResponse

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"The request body is larger than the limit of {limit:,} bytes."}, status=413
    )


# Path pattern -> the name of the setting holding the larger limit of the paths it matches.
_LARGER_BODIES: dict[str, str] = {}


def allow_larger_bodies(path_pattern: str, setting: str) -> None:
    """Bodies of requests whose path matches path_pattern may reach settings.<setting> bytes."""
    taken = _LARGER_BODIES.setdefault(path_pattern, setting)
    if taken != setting:
        raise ValueError(f"{path_pattern!r} already has the limit {taken}.")


def body_limit(path: str) -> int:
    for pattern, setting in _LARGER_BODIES.items():
        if re.fullmatch(pattern, path):
            return getattr(settings, setting)
    return settings.MAX_REQUEST_BODY_BYTES


class RequestLimits:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = body_limit(request.path)
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
