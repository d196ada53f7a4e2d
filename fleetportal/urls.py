from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from fleetportal import admin_login
from fleetportal.api import redoc

admin.site.site_header = "fleetportal"
admin.site.site_title = "fleetportal"
admin.site.index_title = "Fleet administration"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Before the admin's own login URL, which it replaces (same name, with lockouts).
    path("admin/login/", admin_login.login, name="login"),
    path("admin/", admin.site.urls),
    path("config/", include("shadows.urls")),
    # The fleet summary page, /metrics and /healthz (monitoring's summary part).
    path("", include("monitoring.summary.site_urls")),
    path("api/v1/", include("fleetportal.api.urls")),
    path("device/v1/", include("devices.device_api.urls")),
    path("device/v1/", include("shadows.device_api")),
    path("device/v1/", include("firmware.device_api")),
    path("device/v1/", include("firmware.jobs_device_api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Redoc's bundle without its CDN logo (settings.SPECTACULAR_SETTINGS["REDOC_DIST"]).
    path("api/redoc-dist/bundles/redoc.standalone.js", redoc.redoc_bundle, name="redoc-bundle"),
]
