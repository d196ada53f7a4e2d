"""Live events reach the channel layer (real Redis), also when thousands are sent at once — a
configuration change can emit one for every device of a group."""

import asyncio

from channels_redis.core import RedisChannelLayer
from django.conf import settings

from fleetportal import live

EVENTS = 3000


def test_thousands_of_events_at_once_all_reach_their_groups(monkeypatch):
    # The project's layer, with room for every event in the one process-channel they all reach.
    layer = RedisChannelLayer(hosts=[settings.REDIS_URL], capacity=EVENTS * 2)
    monkeypatch.setattr(live, "get_channel_layer", lambda: layer)
    groups = [f"live-test.{n}" for n in range(EVENTS)]

    async def scenario():
        channels = [await layer.new_channel() for _ in groups]
        for group, channel in zip(groups, channels, strict=True):
            await layer.group_add(group, channel)
        try:
            future = live.send([(group, {"type": "t", "n": n}) for n, group in enumerate(groups)])
            # Raises if any send failed (Redis refuses connections past its limit).
            await asyncio.wait_for(asyncio.wrap_future(future), timeout=60)
            return [(await layer.receive(channel))["n"] for channel in channels]
        finally:
            for group, channel in zip(groups, channels, strict=True):
                await layer.group_discard(group, channel)

    assert asyncio.run(scenario()) == list(range(EVENTS))
