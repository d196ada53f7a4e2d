"""Redoc's bundle, served from here without its one remote asset.

The sidecar's redoc.standalone.js draws the Redocly logo in its menu from a CDN: an outside
request the portal must not make (its assets are local) and which the Content-Security-Policy
blocks with a console error. This serves the same bundle with that image as an inline SVG.
"""

from functools import lru_cache
from pathlib import Path

import drf_spectacular_sidecar
from django.http import HttpResponse
from django.views.decorators.http import require_safe

REMOTE_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='16' height='16'%3E"
    "%3Ccircle cx='8' cy='8' r='6' fill='%23417690'/%3E%3C/svg%3E"
)
BUNDLE = (
    Path(drf_spectacular_sidecar.__file__).parent
    / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
)


@lru_cache(maxsize=1)
def _bundle() -> bytes:
    return BUNDLE.read_text(encoding="utf-8").replace(REMOTE_LOGO, LOCAL_LOGO).encode("utf-8")


@require_safe
def redoc_bundle(request):
    response = HttpResponse(_bundle(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
