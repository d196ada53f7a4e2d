"""The job pages' sockets (Channels' communicator, real Redis channel layer): a bulk action's
and a bulk provisioning job's page hear of the job's steps, and a user who may not see the job
is refused."""

import asyncio
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser

from devices import bulk_actions
from devices.choices import DeviceStatus
from devices.consumers import BulkActionConsumer, BulkProvisioningConsumer
from devices.models import BulkDeviceAction, BulkProvisioningJob
from tests.conftest import make_device, make_user
from tests.live_sockets import close_consumer_connection, communicator, received_within

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_bulk_actions_page_hears_its_steps(viewer):
    for n in range(4):
        make_device(f"p-{n}", device_type="pump")
    job = BulkDeviceAction.objects.create(
        action="transition",
        target=DeviceStatus.PROVISIONING,
        params={"device_type": "pump"},
        total=4,
        created_by="otto",
    )

    async def watch():
        socket = communicator(BulkActionConsumer, viewer, job_id=job.pk)
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_from(timeout=5) == "changed"  # the catch-up
        await asyncio.to_thread(bulk_actions.run, str(job.pk))
        heard = await received_within(socket)
        await socket.disconnect()
        await close_consumer_connection()
        return heard

    assert asyncio.run(watch()) == ["changed"]  # coalesced: one message for the whole run
    job.refresh_from_db()
    assert job.status == "finished"


@pytest.mark.parametrize("who", ["anonymous", "no role", "missing job"])
@pytest.mark.parametrize("consumer", [BulkActionConsumer, BulkProvisioningConsumer])
def test_the_socket_refuses_who_may_not_see_the_job(viewer, who, consumer):
    model = consumer.model
    if model is BulkDeviceAction:
        job = model.objects.create(action="transition", target="active", created_by="x")
    else:
        job = model.objects.create(csv_text="device_id,device_type\n", created_by="x")
    user = {"anonymous": AnonymousUser(), "no role": make_user("nobody", is_staff=True)}.get(
        who, viewer
    )
    job_id = uuid.uuid4() if who == "missing job" else job.pk

    async def connect():
        answer = await communicator(consumer, user, job_id=job_id).connect()
        await close_consumer_connection()
        return answer

    assert asyncio.run(connect()) == (False, 4403)


def test_a_viewer_may_watch_a_provisioning_job(viewer):
    job = BulkProvisioningJob.objects.create(csv_text="device_id,device_type\n", created_by="x")

    async def connect():
        socket = communicator(BulkProvisioningConsumer, viewer, job_id=job.pk)
        connected, _ = await socket.connect()
        await socket.disconnect()
        await close_consumer_connection()
        return connected

    assert asyncio.run(connect())
