"""/api/v1/devices/{device_id}/credentials/… (nested under the device, so routed by hand)."""

from django.urls import re_path

from devices.api.credentials import DeviceCredentialViewSet
from devices.validators import DEVICE_ID_CHARS

DEVICE = r"^devices/(?P<device_id>" + DEVICE_ID_CHARS + ")/credentials/"

urlpatterns = [
    re_path(
        DEVICE + "$",
        DeviceCredentialViewSet.as_view({"get": "list", "post": "create"}),
        name="device-credentials",
    ),
    re_path(
        DEVICE + r"(?P<certificate_id>[0-9a-fA-F]{64})/revoke/$",
        DeviceCredentialViewSet.as_view({"post": "revoke"}),
        name="device-credential-revoke",
    ),
]
