"""/api/v1/ routes of monitoring's telemetry part."""

from django.urls import path

from monitoring.telemetry.api import views

urlpatterns = [
    path(
        "devices/<str:device_id>/telemetry/",
        views.TelemetryAggregatesView.as_view(),
        name="telemetry-aggregates",
    ),
    path(
        "devices/<str:device_id>/telemetry/points/",
        views.TelemetryPointsView.as_view(),
        name="telemetry-points",
    ),
]
