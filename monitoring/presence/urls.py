"""/api/v1/ routes of monitoring's presence part."""

urlpatterns: list = []
