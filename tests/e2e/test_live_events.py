"""Accepted shadow changes that arrive over MQTT reach the live pages of the devices someone
watches — coalesced per batch — and cost nothing for the devices nobody watches."""

import asyncio

import orjson
import pytest
from channels.layers import get_channel_layer

from devices.choices import DeviceStatus
from fleetportal import live
from shadows.models import Shadow
from shadows.services import device_group
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UPDATES = 40


def test_a_watched_device_gets_live_events_and_an_unwatched_one_none(bridge, broker, device_client):
    watched = credentialed("e2e-live-watched", status=DeviceStatus.ACTIVE)
    unwatched = credentialed("e2e-live-unwatched", status=DeviceStatus.ACTIVE)
    layer = get_channel_layer()
    watched_group, unwatched_group = (
        device_group(watched.device.pk),
        device_group(unwatched.device.pk),
    )

    async def listen(publish):
        on_watched, on_unwatched = await layer.new_channel(), await layer.new_channel()
        await live.join(on_watched, watched_group)
        # In the unwatched device's channel-layer group, but nobody called join() for it.
        await layer.group_add(unwatched_group, on_unwatched)
        try:
            await asyncio.to_thread(publish)
            events = [await asyncio.wait_for(layer.receive(on_watched), 15)]
            while events[-1]["version"] < UPDATES:
                events.append(await asyncio.wait_for(layer.receive(on_watched), 15))
            try:
                stray = await asyncio.wait_for(layer.receive(on_unwatched), 1.0)
            except TimeoutError:
                stray = None
            return events, stray
        finally:
            await live.leave(on_watched, watched_group)
            await layer.group_discard(unwatched_group, on_unwatched)

    clients = [device_client(identity_of(broker, d)) for d in (watched, unwatched)]

    def publish():
        bridge.stop()  # its session queues the updates, so they arrive in a few batches
        for client, credential in zip(clients, (watched, unwatched), strict=True):
            topic = f"$aws/things/{credential.device.device_id}/shadow/update"
            for n in range(1, UPDATES + 1):
                client.publish(topic, orjson.dumps({"state": {"reported": {"n": n}}}))
        bridge.start()

    events, stray = asyncio.run(listen(publish))

    assert Shadow.objects.get(device=unwatched.device).version == UPDATES
    assert stray is None
    assert events[-1] == {
        "type": "shadow.changed",
        "device_id": "e2e-live-watched",
        "name": "",
        "version": UPDATES,
        "live": True,
    }
    assert len(events) < UPDATES  # one per batch, not one per update
