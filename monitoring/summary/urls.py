"""/api/v1/ routes of monitoring's summary part."""

urlpatterns: list = []
