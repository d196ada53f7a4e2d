"""The live job pages' WebSockets: a bulk provisioning job's and a bulk action's page hear of
each step (devices.bulk, devices.bulk_actions emit after it commits) and fetch their parts
again, at most once per fleetportal.live_consumers.COALESCE_SECONDS."""

import uuid

from channels.db import database_sync_to_async
from django.urls import path

from devices import bulk, bulk_actions
from devices.models import BulkDeviceAction, BulkProvisioningJob
from fleetportal.live_consumers import LivePartsConsumer


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
    path("ws/devices/bulk-actions/<uuid:job_id>/", BulkActionConsumer.as_asgi()),
    path("ws/devices/bulk-provisioning/<uuid:job_id>/", BulkProvisioningConsumer.as_asgi()),
)
