"""/api/v1/: each app contributes its routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("devices.api.urls")),
    path("", include("shadows.api.urls")),
    path("", include("firmware.api.urls")),
    path("", include("firmware.api.jobs_urls")),
    path("", include("firmware.api.rollouts_urls")),
    path("", include("monitoring.urls")),
]
