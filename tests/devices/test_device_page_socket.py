"""The device page's socket (Channels' communicator, the real Redis channel layer): it refuses
users who may not view devices (4403), lets a viewer watch, catches up on connect, and hears a
shadow change, a presence change and a status move as one coalesced "changed"."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections

from devices import services
from devices.choices import DeviceStatus
from devices.consumers import DevicePageConsumer
from fleetportal import live
from shadows import services as shadow_services
from tests import live_sockets
from tests.conftest import make_device, make_user
from tests.live_sockets import received_within

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def communicator(user, device_pk) -> WebsocketCommunicator:
    return live_sockets.communicator(DevicePageConsumer, user, pk=device_pk)


def watch(user, device, change) -> list[str]:
    async def run():
        socket = communicator(user, device.pk)
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_from(timeout=5) == "changed"  # the catch-up
        await asyncio.to_thread(change)
        heard = await received_within(socket)
        await socket.disconnect()
        await database_sync_to_async(connections.close_all)()
        return heard

    return asyncio.run(run())


def test_a_viewer_hears_a_burst_of_shadow_updates_as_one_change(viewer):
    device = make_device("ws-1", status=DeviceStatus.ACTIVE)

    def burst():
        with live.coalesced():
            for n in range(5):
                shadow_services.update(device, "", {"state": {"reported": {"n": n}}}, actor="d")

    assert watch(viewer, device, burst) == ["changed"]


def test_a_status_move_is_heard(operator):
    device = make_device("ws-2", status=DeviceStatus.ACTIVE)

    def move():
        services.transition_device(device, DeviceStatus.MAINTENANCE, actor="otto")

    assert watch(operator, device, move) == ["changed"]


def test_another_devices_change_is_not_heard(operator):
    device, other = make_device("ws-3"), make_device("ws-4")

    def elsewhere():
        shadow_services.update(other, "", {"state": {"reported": {"x": 1}}}, actor="d")

    assert watch(operator, device, elsewhere) == []


@pytest.mark.parametrize("who", ["anonymous", "no role", "not staff"])
def test_the_socket_refuses_who_may_not_view_devices(who):
    device = make_device("ws-5")
    user = {
        "anonymous": lambda: AnonymousUser(),
        "no role": lambda: make_user("nobody", is_staff=True),
        "not staff": lambda: make_user("outsider", "Fleet viewer"),
    }[who]()

    async def connect():
        answer = await communicator(user, device.pk).connect()
        await database_sync_to_async(connections.close_all)()
        return answer

    assert asyncio.run(connect()) == (False, 4403)


def test_an_unknown_device_is_refused(viewer):
    import uuid

    async def connect():
        answer = await communicator(viewer, uuid.uuid4()).connect()
        await database_sync_to_async(connections.close_all)()
        return answer

    assert asyncio.run(connect()) == (False, 4403)
