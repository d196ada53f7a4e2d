from django.urls import include, path
from rest_framework.routers import SimpleRouter

from devices.api import views

router = SimpleRouter()
router.register("devices", views.DeviceViewSet)
router.register("groups", views.DeviceGroupViewSet)
router.register("events", views.DeviceEventViewSet)

urlpatterns = [
    *router.urls,
    path("", include("devices.api.credentials_urls")),
    path("", include("devices.api.provisioning_urls")),
]
