"""The shadow page, live: its socket (Channels' communicator, real Redis channel layer) hears when
*its* shadow changes — not the device's other shadows, not its presence — and refuses a user
who may not see shadows; the page marks the parts it fetches again."""

import asyncio

import pytest
from django.urls import reverse

from shadows import services
from shadows.consumers import ShadowConsumer
from tests.conftest import make_device, make_user
from tests.live_sockets import close_consumer_connection, communicator, received_within

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_page_hears_its_own_shadow_only(viewer):
    device = make_device("lamp-1")
    classic = services.set_desired(device, "", {"on": True}, actor="x").shadow
    services.set_desired(device, "power", {"mode": "eco"}, actor="x")

    async def watch():
        socket = communicator(ShadowConsumer, viewer, shadow_id=classic.pk)
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_from(timeout=5) == "changed"  # the catch-up
        await asyncio.to_thread(services.set_desired, device, "power", {"mode": "max"}, actor="x")
        quiet = await received_within(socket)
        for n in range(5):  # five updates in a burst: coalesced
            report = {"state": {"reported": {"n": n}}}
            await asyncio.to_thread(services.update, device, "", report, actor="device")
        heard = await received_within(socket)
        await socket.disconnect()
        await close_consumer_connection()
        return quiet, heard

    quiet, heard = asyncio.run(watch())
    assert quiet == []
    assert 1 <= len(heard) <= 2


def test_the_socket_refuses_who_may_not_see_shadows():
    device = make_device("lamp-2")
    shadow = services.set_desired(device, "", {"on": True}, actor="x").shadow
    nobody = make_user("nobody", is_staff=True)

    async def connect():
        answer = await communicator(ShadowConsumer, nobody, shadow_id=shadow.pk).connect()
        await close_consumer_connection()
        return answer

    assert asyncio.run(connect()) == (False, 4403)


def test_the_page_names_its_socket_and_parts(client, viewer):
    device = make_device("lamp-3")
    shadow = services.set_desired(device, "", {"on": True}, actor="x").shadow
    client.force_login(viewer)
    page = client.get(reverse("admin:shadows_shadow_change", args=[shadow.pk])).text
    assert f'data-socket-path="/ws/shadows/{shadow.pk}/"' in page
    assert 'data-part="columns"' in page and 'data-part="history"' in page
