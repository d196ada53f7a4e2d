"""Apps add their WebSocket routes to the one ASGI application without it importing them."""

import pytest
from asgiref.sync import async_to_sync
from channels.generic.websocket import WebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from fleetportal import routing


class Echo(WebsocketConsumer):
    def connect(self):
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        self.send(text_data=f"echo: {text_data}")


@pytest.fixture
def routes(monkeypatch):
    """The routes list, restored afterwards (the application holds the same list object)."""
    saved = list(routing.websocket_urlpatterns)
    yield routing
    routing.websocket_urlpatterns[:] = saved


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_route_an_app_adds_is_served_by_the_asgi_application(routes):
    routes.add_websocket_routes(path("ws/test-echo/", Echo.as_asgi()))

    assert async_to_sync(talk)() == "echo: hello"


async def talk() -> str:
    from fleetportal.asgi import application  # builds the application: Django must be set up

    communicator = WebsocketCommunicator(
        application, "/ws/test-echo/", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data="hello")
    answer = await communicator.receive_from()
    await communicator.disconnect()
    return answer


def test_a_path_two_apps_claim_is_refused(routes):
    routes.add_websocket_routes(path("ws/test-twice/", Echo.as_asgi()))

    with pytest.raises(ImproperlyConfigured, match="ws/test-twice/"):
        routes.add_websocket_routes(path("ws/test-twice/", Echo.as_asgi()))
