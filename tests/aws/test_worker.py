"""The whole way with a real Celery worker: a committed desired change reaches AWS through the
task queued after the commit, with nobody calling the sender by hand."""

import time

import orjson
import pytest
from django.db import connection

from aws_gateway import client
from shadows import services
from shadows.models import Shadow
from tests.aws.helpers import aws_device_with_thing
from tests.aws.moto_server import FAKE_CREDENTIALS
from tests.devices.claim_helpers import CeleryWorker, running


@pytest.fixture(scope="session")
def aws_worker(
    moto_server, django_db_setup, django_db_blocker, pki_dir, tmp_path_factory, worker_id
):
    worker = CeleryWorker(
        connection.settings_dict["NAME"],
        pki_dir / "ca",
        tmp_path_factory.mktemp("celery-aws") / "worker.log",
        worker_id,
        FLEETPORTAL_AWS_ENDPOINT_URL=moto_server.url,
        FLEETPORTAL_AWS_REGION=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        FLEETPORTAL_AWS_MAX_ATTEMPTS="2",
        **FAKE_CREDENTIALS,
    )
    yield from running(worker)


def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_committed_change_reaches_aws_through_the_worker(aws, aws_worker):
    device = aws_device_with_thing("thermostat-w1")
    services.set_desired(device, "", {"target": 20}, actor="otto")  # commits: the task is queued

    def on_aws():
        try:
            answer = client.client("iot-data").get_thing_shadow(thingName="thermostat-w1")
        except client.client("iot-data").exceptions.ResourceNotFoundException:
            return None
        return orjson.loads(answer["payload"].read())

    document = eventually(on_aws)
    assert document is not None, aws_worker.log()
    assert document["state"]["desired"] == {"target": 20}

    def mirrored():
        row = Shadow.objects.get(device=device, name="")
        return row.gateway_version == document["version"] and row

    row = eventually(mirrored)
    assert row and row.version == document["version"], aws_worker.log()
