"""The shadow page's WebSocket: joins the device's live group (shadows.writes.device_group) and
tells the page "changed" when *this* shadow changes, at most once per
fleetportal.live_consumers.COALESCE_SECONDS however many updates arrive; the page then fetches
its parts again (fleetportal/static/fleetportal/live_parts.js)."""

from channels.db import database_sync_to_async
from django.urls import path

from fleetportal.live_consumers import LivePartsConsumer
from shadows.models import Shadow
from shadows.writes import device_group

VIEW = "shadows.view_shadow"


class ShadowConsumer(LivePartsConsumer):
    async def group_for(self) -> str | None:
        shadow_id = self.scope["url_route"]["kwargs"]["shadow_id"]
        found = await database_sync_to_async(_readable_shadow)(self.scope["user"], shadow_id)
        if found is None:
            return None
        self.device_pk, self.shadow_name = found
        return device_group(self.device_pk)

    async def shadow_changed(self, event):
        # The device's other shadows have pages of their own.
        if event.get("name") == self.shadow_name:
            await self.announce(event)

    async def dispatch(self, message):
        # The device's group also carries presence and whatever other apps send a device page;
        # this page ignores them instead of failing on a type it has no handler for.
        if message["type"].startswith("websocket.") or message["type"] == "shadow.changed":
            await super().dispatch(message)


def _readable_shadow(user, shadow_id) -> tuple | None:
    if not (user.is_authenticated and user.is_staff and user.is_active and user.has_perm(VIEW)):
        return None
    return Shadow.objects.filter(pk=shadow_id).values_list("device_id", "name").first()


ROUTES = (path("ws/shadows/<uuid:shadow_id>/", ShadowConsumer.as_asgi()),)
