"""The WebSocket side of a live page (the rollout page, the fleet summary): join one live group
and tell the page "changed" — once on connect (whatever changed since the page was rendered),
then at most once per COALESCE_SECONDS however many events arrive. The page fetches its parts
again (fleetportal/static/fleetportal/live_parts.js).

A subclass says which group a connection may join (`group_for`, None = refused with 4403) and
names its event handler after its event type, pointing at `announce`:

    class RolloutConsumer(LivePartsConsumer):
        rollout_changed = LivePartsConsumer.announce   # events {"type": "rollout.changed"}
"""

import asyncio

from channels.generic.websocket import AsyncWebsocketConsumer

from fleetportal import live

COALESCE_SECONDS = 0.3
REFUSED = 4403


class LivePartsConsumer(AsyncWebsocketConsumer):
    group = ""

    async def group_for(self) -> str | None:
        """The live group this connection watches, or None when its user may not."""
        raise NotImplementedError

    async def connect(self):
        group = await self.group_for()
        if group is None:
            await self.close(code=REFUSED)
            return
        self.group, self.pending = group, False
        await live.join(self.channel_name, self.group)
        await self.accept()
        # Joined before this: whatever changed since the page was rendered is fetched now.
        await self.send(text_data="changed")

    async def disconnect(self, code):
        if self.group:
            await live.leave(self.channel_name, self.group)

    async def announce(self, event):
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
