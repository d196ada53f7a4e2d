"""ASGI entry point: Django for HTTP, at most WEB_CONCURRENCY requests in its views at once
(fleetportal/web_concurrency.py); Channels for WebSockets (live pages)."""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")
django_asgi_app = get_asgi_application()

from fleetportal.startup import require_real_secret_key  # noqa: E402  (needs Django set up)

require_real_secret_key("asgi")

from fleetportal.routing import websocket_urlpatterns  # noqa: E402
from fleetportal.web_concurrency import Bounded  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": Bounded(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
