"""The HTTP device API (/device/v1/): devices authenticate with a JWT signed by their own key.

The trailing slash is optional: a device's POST must not depend on following a redirect.
"""

from django.urls import re_path

from devices.device_api import views

urlpatterns = [
    re_path(r"^whoami/?$", views.WhoAmIView.as_view(), name="device-whoami"),
    re_path(
        r"^certificates/rotate/?$", views.RotateView.as_view(), name="device-certificates-rotate"
    ),
    re_path(
        r"^certificates/confirm/?$",
        views.ConfirmView.as_view(),
        name="device-certificates-confirm",
    ),
]
