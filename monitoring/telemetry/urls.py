"""/api/v1/ routes of monitoring's telemetry part."""

urlpatterns: list = []
