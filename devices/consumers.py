"""The device page's WebSocket (ws/devices/<pk>/): joins the device's live group
(devices.live_events) and tells the page to fetch its parts again, coalesced
(fleetportal.live_consumers). A user who may not view devices is refused (4403); a viewer's
socket sees the same changes as an operator's — the page, not the socket, offers the actions."""

from channels.db import database_sync_to_async

from devices.live_events import device_group
from devices.models import Device
from fleetportal.live_consumers import LivePartsConsumer

VIEW = "devices.view_device"


class DevicePageConsumer(LivePartsConsumer):
    shadow_changed = LivePartsConsumer.announce  # {"type": "shadow.changed"} (shadows.writes)
    presence_changed = LivePartsConsumer.announce  # {"type": "presence.changed"} (monitoring)
    device_changed = LivePartsConsumer.announce  # {"type": "device.changed"} (the registry)

    async def group_for(self) -> str | None:
        pk = self.scope["url_route"]["kwargs"]["pk"]
        found = await database_sync_to_async(_viewable_device)(self.scope["user"], pk)
        return None if found is None else device_group(found)


def _viewable_device(user, pk):
    if not (user.is_authenticated and user.is_staff and user.has_perm(VIEW)):
        return None
    return Device.objects.filter(pk=pk).values_list("pk", flat=True).first()
