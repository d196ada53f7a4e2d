"""The fleet summary page's WebSocket (ws/fleet/summary/): joins the "fleet-summary" live group
and tells the page to fetch its parts again, at most once per COALESCE_SECONDS."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from fleetportal import live
from monitoring.summary.api import VIEW
from monitoring.summary.services import GROUP

COALESCE_SECONDS = 0.3


class FleetSummaryConsumer(AsyncWebsocketConsumer):
    joined = False

    async def connect(self):
        if not await database_sync_to_async(_may_read)(self.scope["user"]):
            await self.close(code=4403)
            return
        await live.join(self.channel_name, GROUP)
        self.joined, self.pending = True, False
        await self.accept()
        # Joined before this: whatever changed since the page was rendered is fetched now.
        await self.send(text_data="changed")

    async def disconnect(self, code):
        if self.joined:
            await live.leave(self.channel_name, GROUP)

    async def fleet_summary(self, event):
        if self.pending:
            return  # a message is already on its way: it covers this change too
        self.pending = True
        self.flush = asyncio.ensure_future(self._flush())

    async def _flush(self):
        await asyncio.sleep(COALESCE_SECONDS)
        self.pending = False
        await self.send(text_data="changed")


def _may_read(user) -> bool:
    return user.is_authenticated and user.is_staff and user.has_perm(VIEW)
