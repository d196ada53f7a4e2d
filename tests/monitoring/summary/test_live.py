"""The summary page's socket (Channels' communicator, real Redis channel layer): it refuses
whoever may not read the summary, catches up on connect, and hears of a refresh only when a
figure changed — once, however many changes came together."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections

from monitoring.summary import services
from monitoring.summary.consumers import FleetSummaryConsumer
from tests.conftest import make_user
from tests.firmware.rollouts.helpers import fleet

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def communicator(user) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(FleetSummaryConsumer.as_asgi(), "/ws/fleet/summary/")
    socket.scope["user"] = user
    return socket


async def close_consumer_connection() -> None:
    """The consumer's database work ran on the sync-to-async thread: close its connection there,
    or the test database cannot be dropped at the end of the run."""
    await database_sync_to_async(connections.close_all)()


async def received_within(socket, seconds: float = 1.5) -> list[str]:
    messages = []
    while not await socket.receive_nothing(timeout=seconds):
        messages.append(await socket.receive_from())
    return messages


def test_a_viewer_hears_one_changed_per_changing_refresh_and_none_otherwise(viewer):
    fleet(3)
    services.refresh()

    async def watch():
        socket = communicator(viewer)
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_from(timeout=5) == "changed"  # the catch-up
        await received_within(socket)  # the setup's own refresh may still be on its way
        # Nothing changed: a refresh says nothing.
        await asyncio.to_thread(services.refresh)
        quiet = await received_within(socket)
        # Two changes counted by one refresh: one message.
        await asyncio.to_thread(fleet, 2, "new")
        await asyncio.to_thread(fleet, 2, "newer")
        await asyncio.to_thread(services.refresh)
        changed = await received_within(socket)
        await socket.disconnect()
        await close_consumer_connection()
        return quiet, changed

    assert asyncio.run(watch()) == ([], ["changed"])


@pytest.mark.parametrize("who", ["anonymous", "no role"])
def test_the_socket_refuses_who_may_not_read_the_summary(who):
    user = AnonymousUser() if who == "anonymous" else make_user("nobody", is_staff=True)

    async def connect():
        answer = await communicator(user).connect()
        await close_consumer_connection()
        return answer

    assert asyncio.run(connect()) == (False, 4403)
