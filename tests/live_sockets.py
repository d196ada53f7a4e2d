"""Helpers for the live pages' socket tests (Channels' communicator, real Redis channel layer)."""

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections


def communicator(consumer, user, **route) -> WebsocketCommunicator:
    """A socket to `consumer` as `user`, with the URL route's keyword arguments."""
    socket = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    socket.scope["user"] = user
    socket.scope["url_route"] = {"kwargs": route}
    return socket


async def received_within(socket, seconds: float = 1.5) -> list[str]:
    """What the socket receives until it has been quiet for `seconds`."""
    messages = []
    while not await socket.receive_nothing(timeout=seconds):
        messages.append(await socket.receive_from())
    return messages


async def close_consumer_connection() -> None:
    """The consumer's database work ran on the sync-to-async thread: close its connection there,
    or the test database cannot be dropped at the end of the run."""
    await database_sync_to_async(connections.close_all)()
