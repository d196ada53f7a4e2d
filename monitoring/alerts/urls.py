"""/api/v1/ routes of monitoring's alerts part."""

urlpatterns: list = []
