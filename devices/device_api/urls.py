"""The HTTP device API (/device/v1/): devices authenticate with a JWT signed by their own key."""

urlpatterns: list = []
