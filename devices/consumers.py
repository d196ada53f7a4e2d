"""The registry's live pages' WebSockets.

- The device page (ws/devices/<pk>/) joins the device's live group (devices.live_events) and tells
  the page to fetch its parts again, coalesced (fleetportal.live_consumers). A user who may not
  view devices is refused (4403); a viewer's socket sees the same changes as an operator's — the
  page, not the socket, offers the actions.
- A bulk provisioning job's and a bulk action's page hear of each step (devices.bulk,
  devices.bulk_actions emit after it commits) and fetch their parts again.
"""

import uuid

from channels.db import database_sync_to_async
from django.urls import path

from devices import bulk, bulk_actions
from devices.live_events import device_group
from devices.models import BulkDeviceAction, BulkProvisioningJob, Device
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


class JobConsumer(LivePartsConsumer):
    """A job's page: the job must exist and the user must be allowed to see its kind."""

    model: type = BulkDeviceAction
    permissions: tuple[str, ...] = ()
    job_changed = LivePartsConsumer.announce  # events {"type": "job.changed"}

    async def group_for(self) -> str | None:
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        visible = await database_sync_to_async(self._visible)(self.scope["user"], job_id)
        return self.group_of(job_id) if visible else None

    def _visible(self, user, job_id: uuid.UUID) -> bool:
        if not (user.is_authenticated and user.is_staff and user.is_active):
            return False
        if not any(user.has_perm(p) for p in self.permissions):
            return False
        return self.model.objects.filter(pk=job_id).exists()

    def group_of(self, job_id) -> str:
        raise NotImplementedError


class BulkActionConsumer(JobConsumer):
    model = BulkDeviceAction
    permissions = ("devices.view_bulkdeviceaction", "devices.view_device")

    def group_of(self, job_id) -> str:
        return bulk_actions.live_group(job_id)


class BulkProvisioningConsumer(JobConsumer):
    model = BulkProvisioningJob
    permissions = ("devices.view_bulkprovisioningjob",)

    def group_of(self, job_id) -> str:
        return bulk.live_group(job_id)


ROUTES = (
    path("ws/devices/<uuid:pk>/", DevicePageConsumer.as_asgi(), name="ws-device"),
    path("ws/devices/bulk-actions/<uuid:job_id>/", BulkActionConsumer.as_asgi()),
    path("ws/devices/bulk-provisioning/<uuid:job_id>/", BulkProvisioningConsumer.as_asgi()),
)
