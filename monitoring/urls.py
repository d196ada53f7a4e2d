"""/api/v1/ routes of monitoring, one module per part."""

from django.urls import include, path

urlpatterns = [
    path("", include("monitoring.presence.urls")),
    path("", include("monitoring.telemetry.urls")),
    path("", include("monitoring.alerts.urls")),
    path("", include("monitoring.summary.urls")),
]
