"""Configuration routes: /config-values/, /config-changes/, a device's effective configuration,
drift, and a group's summary (under the devices' and groups' paths, served by this app)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from shadows.api import config_views as views

router = SimpleRouter()
router.register("config-values", views.ConfigValueViewSet)
router.register("config-changes", views.ConfigChangeViewSet)

urlpatterns = [
    *router.urls,
    path(
        "devices/<str:device_id>/config/",
        views.DeviceConfigurationView.as_view(),
        name="device-config",
    ),
    path("config/drift/", views.DriftView.as_view(), name="config-drift"),
    path(
        "groups/<uuid:pk>/config-summary/",
        views.GroupConfigSummaryView.as_view(),
        name="group-config-summary",
    ),
]
