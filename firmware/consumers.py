"""The rollout page's WebSocket: joins the rollout's live group and tells the page to fetch its
parts again, at most once per COALESCE_SECONDS however many events arrive."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from firmware.rollouts import live_events
from firmware.rollouts.models import Rollout
from fleetportal import live

COALESCE_SECONDS = 0.3


class RolloutConsumer(AsyncWebsocketConsumer):
    group = ""

    async def connect(self):
        user = self.scope["user"]
        rollout_id = self.scope["url_route"]["kwargs"]["rollout_id"]
        pk = await database_sync_to_async(_readable_rollout)(user, rollout_id)
        if pk is None:
            await self.close(code=4403)
            return
        self.group, self.pending = live_events.group(pk), False
        await live.join(self.channel_name, self.group)
        await self.accept()
        # Joined before this: whatever changed since the page was rendered is fetched now.
        await self.send(text_data="changed")

    async def disconnect(self, code):
        if self.group:
            await live.leave(self.channel_name, self.group)

    async def rollout_changed(self, event):
        if self.pending:
            return  # a message is already on its way: it covers this change too
        self.pending = True
        # A task, not a sleep here: the consumer handles its messages one at a time, so the
        # events arriving meanwhile are read (and dropped) at once instead of queueing.
        self.flush = asyncio.ensure_future(self._flush())

    async def _flush(self):
        await asyncio.sleep(COALESCE_SECONDS)
        self.pending = False
        await self.send(text_data="changed")


def _readable_rollout(user, rollout_id: str) -> int | None:
    if not (user.is_authenticated and user.is_staff and user.has_perm("firmware.view_rollout")):
        return None
    return Rollout.objects.filter(rollout_id=rollout_id).values_list("pk", flat=True).first()
