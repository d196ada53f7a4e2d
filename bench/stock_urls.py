"""The baseline for bench/registry.py: the same admin and API with Django's and DRF's defaults.

Stock admin: the default Paginator (a full COUNT(*) per page view), show_full_result_count (a
second full count), plain list_filter fields (SELECT DISTINCT over the table for each) and
Django's own search over the device's text fields.
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

    def get_list_filter(self, request):
        return self.list_filter  # Django's own field filters, not devices.device_list's

    def get_search_results(self, request, queryset, search_term):
        # Django's search over search_fields (no metadata or location values).
        return admin.ModelAdmin.get_search_results(self, request, queryset, search_term)


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
