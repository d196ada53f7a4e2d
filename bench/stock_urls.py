"""The baseline for bench/registry.py: the same admin and API with Django's and DRF's defaults.

Stock admin: the default Paginator (a full COUNT(*) per page view), show_full_result_count (a
second full count), and plain list_filter fields (SELECT DISTINCT over the table for each).
Stock API: page-number pagination (a full COUNT(*) and OFFSET to reach a deep page).
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.urls import include, path
from rest_framework.pagination import PageNumberPagination
from rest_framework.routers import SimpleRouter

from devices.admin import DeviceAdmin
from devices.api.views import DeviceViewSet
from devices.models import Device
from fleetportal.urls import urlpatterns as portal_urlpatterns


class StockDeviceAdmin(DeviceAdmin):
    paginator = Paginator
    show_full_result_count = True
    list_filter = ("status", "device_type", "group", "firmware_version")


class StockPagination(PageNumberPagination):
    page_size = 50


class StockDeviceViewSet(DeviceViewSet):
    queryset = DeviceViewSet.queryset.order_by("-created_at")
    pagination_class = StockPagination


stock_site = admin.AdminSite(name="stock-admin")
stock_site.register(Device, StockDeviceAdmin)
router = SimpleRouter()
router.register("devices", StockDeviceViewSet, basename="stock-device")

urlpatterns = [
    path("stock-admin/", stock_site.urls),
    path("stock-api/", include(router.urls)),
    *portal_urlpatterns,
]
