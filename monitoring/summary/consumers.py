"""The fleet summary page's WebSocket (ws/fleet/summary/): joins the "fleet-summary" live group
(monitoring.summary.services emits to it when a refresh changed a figure) and tells the page to
fetch its parts again, coalesced (fleetportal.live_consumers)."""

from channels.db import database_sync_to_async

from fleetportal.live_consumers import LivePartsConsumer
from monitoring.summary.api import VIEW
from monitoring.summary.services import GROUP


class FleetSummaryConsumer(LivePartsConsumer):
    fleet_summary = LivePartsConsumer.announce  # events {"type": "fleet.summary"}
    alerts_changed = LivePartsConsumer.announce  # {"type": "alerts.changed"}: the latest alerts

    async def group_for(self) -> str | None:
        return GROUP if await database_sync_to_async(_may_read)(self.scope["user"]) else None


def _may_read(user) -> bool:
    return user.is_authenticated and user.is_staff and user.has_perm(VIEW)
