"""/api/v1/ routes of monitoring's presence part."""

from django.urls import path

from monitoring.presence import api

urlpatterns: list = [
    path("devices/<str:device_id>/health/", api.DeviceHealthView.as_view(), name="device-health"),
    path(
        "devices/<str:device_id>/presence-events/",
        api.DevicePresenceEventList.as_view(),
        name="device-presence-events",
    ),
    path("presence-events/", api.PresenceEventList.as_view(), name="presence-events"),
]
