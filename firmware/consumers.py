"""The rollout page's WebSocket: joins the rollout's live group and tells the page to fetch its
parts again, at most once per fleetportal.live_consumers.COALESCE_SECONDS however many events
arrive."""

from channels.db import database_sync_to_async

from firmware.rollouts import live_events
from firmware.rollouts.models import Rollout
from fleetportal.live_consumers import LivePartsConsumer


class RolloutConsumer(LivePartsConsumer):
    rollout_changed = LivePartsConsumer.announce

    async def group_for(self) -> str | None:
        rollout_id = self.scope["url_route"]["kwargs"]["rollout_id"]
        pk = await database_sync_to_async(_readable_rollout)(self.scope["user"], rollout_id)
        return None if pk is None else live_events.group(pk)


def _readable_rollout(user, rollout_id: str) -> int | None:
    if not (user.is_authenticated and user.is_staff and user.has_perm("firmware.view_rollout")):
        return None
    return Rollout.objects.filter(rollout_id=rollout_id).values_list("pk", flat=True).first()
