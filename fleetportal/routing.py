"""WebSocket routes for the live pages (filled in by the monitoring app)."""

websocket_urlpatterns: list = []
