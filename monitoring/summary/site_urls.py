"""Routes of the summary part outside /api/v1/: the page, /metrics and /healthz."""

from django.contrib import admin
from django.urls import path

from monitoring.summary import health, metrics, pages

urlpatterns = [
    path("fleet/", admin.site.admin_view(pages.fleet_page), name="fleet-page"),
    path("fleet/parts/", admin.site.admin_view(pages.fleet_parts), name="fleet-page-parts"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
]
