"""Operator pages of the shadows app outside the admin (mounted at /config/)."""

from django.contrib import admin
from django.urls import path

from shadows import device_page, views

app_name = "shadows"

urlpatterns = [
    path("drift/", views.drift, name="config-drift"),
    # The device page's Shadow tab posts its desired-state form here (admin login required).
    path(
        "devices/<uuid:device_pk>/shadows/<str:name>/desired/",
        admin.site.admin_view(device_page.save_desired),
        name="device-shadow-desired",
    ),
    path(
        "devices/<uuid:device_pk>/configuration/push/",
        admin.site.admin_view(device_page.push_configuration),
        name="device-configuration-push",
    ),
]
