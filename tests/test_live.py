"""Live events reach the channel layer (real Redis): every watched group gets its events, also
when thousands are sent at once (a configuration change can emit one for every device of a
group), and groups nobody watches cost no channel-layer send."""

import asyncio
import time

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from fleetportal import live

EVENTS = 3000


def run(coroutine):
    return asyncio.run(coroutine)


async def receive_all(layer, channel, timeout=10.0) -> list:
    events = []
    while True:
        try:
            events.append(await asyncio.wait_for(layer.receive(channel), timeout))
        except TimeoutError:
            return events
        timeout = 0.5  # the rest arrive together


def test_thousands_of_events_at_once_all_reach_their_watched_groups(monkeypatch):
    # The project's layer, with room for every event in the one channel they all reach.
    layer = RedisChannelLayer(hosts=[settings.REDIS_URL], capacity=EVENTS * 2)
    monkeypatch.setattr(live, "get_channel_layer", lambda: layer)
    groups = [f"live-test.{n}" for n in range(EVENTS)]

    async def scenario():
        channel = await layer.new_channel()
        await live.join(channel, *groups)
        try:
            future = live.send([(group, {"type": "t", "n": n}) for n, group in enumerate(groups)])
            # Raises if any send failed (Redis refuses connections past its limit).
            await asyncio.wait_for(asyncio.wrap_future(future), timeout=60)
            return await receive_all(layer, channel)
        finally:
            await live.leave(channel, *groups)

    assert sorted(event["n"] for event in run(scenario())) == list(range(EVENTS))


def test_only_watched_groups_get_events_and_leaving_stops_them(monkeypatch):
    layer = get_channel_layer()
    watched, unwatched = "live-test.watched", "live-test.unwatched"

    async def scenario():
        channel = await layer.new_channel()
        # Joined to both groups through the channel layer, but only one is watched.
        await layer.group_add(unwatched, channel)
        await live.join(channel, watched)
        try:
            sent = live.send([(watched, {"type": "t", "n": 1}), (unwatched, {"type": "t", "n": 2})])
            await asyncio.wrap_future(sent)
            before_leaving = await receive_all(layer, channel, timeout=5)
            await live.leave(channel, watched)
            await asyncio.sleep(live.REFRESH_SECONDS * 1.2)  # every sender has seen it
            await asyncio.wrap_future(live.send([(watched, {"type": "t", "n": 3})]))
            after_leaving = await receive_all(layer, channel, timeout=1)
        finally:
            await layer.group_discard(unwatched, channel)
            await live.leave(channel, watched)
        return before_leaving, after_leaving

    before_leaving, after_leaving = run(scenario())
    assert [event["n"] for event in before_leaving] == [1]
    assert after_leaving == []


@pytest.mark.parametrize("waited", [False, True])
def test_a_send_right_after_join_returns_is_delivered(waited):
    # join() returns only once every sender's view includes the new watch, whatever that
    # sender read last (here: just before the join, the worst case).
    layer = get_channel_layer()
    group = f"live-test.fresh-{waited}"

    async def scenario():
        channel = await layer.new_channel()
        await asyncio.wrap_future(live.send([("live-test.other", {"type": "t"})]))
        if waited:
            await asyncio.sleep(live.REFRESH_SECONDS)
        await live.join(channel, group)
        try:
            await asyncio.wrap_future(live.send([(group, {"type": "t", "n": 7})]))
            return await receive_all(layer, channel, timeout=5)
        finally:
            await live.leave(channel, group)

    assert [event["n"] for event in run(scenario())] == [7]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_change_committed_right_after_join_returns_reaches_the_page():
    # The process already holds a fresh view of the watched groups (its events are filtered
    # before the commit); join() must not return before that view includes the new group.
    from django.db import transaction

    layer = get_channel_layer()
    group = "live-test.emit-after-join"
    with transaction.atomic():
        live.emit("live-test.nobody", "k", {"type": "t"})  # starts this process's view
    time.sleep(live.REFRESH_SECONDS * 2)
    assert live._may_be_watched(group) is False  # fresh, and nobody watches it yet

    async def scenario():
        channel = await layer.new_channel()
        await live.join(channel, group)
        try:

            def change():
                with transaction.atomic():
                    live.emit(group, "k", {"type": "t", "n": 9})

            await asyncio.to_thread(change)
            return await receive_all(layer, channel, timeout=5)
        finally:
            await live.leave(channel, group)

    assert [event["n"] for event in run(scenario())] == [9]
