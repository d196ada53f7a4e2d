"""WebSocket routes for the live pages. Each app adds its own from its AppConfig.ready():

    from django.urls import path
    from fleetportal import routing

    routing.add_websocket_routes(path("ws/fleet/", FleetConsumer.as_asgi(), name="ws-fleet"))

fleetportal.asgi serves whatever the apps added by the time Django is set up.
"""

from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []


def add_websocket_routes(*patterns: URLPattern) -> None:
    """Add routes; a path another app already serves is refused at start-up."""
    taken = {str(p.pattern) for p in websocket_urlpatterns}
    for pattern in patterns:
        if str(pattern.pattern) in taken:
            raise ImproperlyConfigured(f"WebSocket path {pattern.pattern} is already routed.")
        taken.add(str(pattern.pattern))
        websocket_urlpatterns.append(pattern)
