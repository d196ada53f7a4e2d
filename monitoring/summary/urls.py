"""/api/v1/ routes of monitoring's summary part."""

from django.urls import path

from monitoring.summary.api import FleetSummaryView

urlpatterns = [path("fleet/summary/", FleetSummaryView.as_view(), name="fleet-summary")]
