from django.urls import path
from rest_framework.routers import SimpleRouter

from firmware.api import catalog

router = SimpleRouter()
router.register("firmware", catalog.FirmwareVersionViewSet)

urlpatterns = [
    # Before the router's firmware/<id>/.
    path("firmware/signing-key/", catalog.SigningKeyView.as_view(), name="firmware-signing-key"),
    *router.urls,
]
