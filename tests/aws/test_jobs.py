"""Jobs for devices on AWS IoT Core: one portal job, its AWS devices handed to one AWS IoT job
(CreateJob), their executions mirrored from job execution events and the reconcile, and a
rollout's gate acting on a mirrored FAILED."""

from datetime import UTC, datetime

import orjson
import pytest
from botocore.stub import Stubber

from aws_gateway import client, job_delivery, job_mirror
from aws_gateway.models import AwsJob
from firmware import engine, jobs
from firmware.models import JobExecution
from firmware.rollouts import engine as rollouts
from firmware.rollouts.models import Rollout, RolloutDevice
from fleetportal import topics
from fleetportal.models import OutboxMessage
from tests.aws.helpers import aws_device_with_thing, drain, forward, make_queue
from tests.conftest import make_device
from tests.firmware.catalog_helpers import (  # noqa: F401 - firmware_env is a fixture
    add,
    firmware_env,
)
from tests.firmware.helpers import at, make_version
from tests.firmware.rollouts.test_engine import make_rollout

pytestmark = pytest.mark.django_db


def execution_event(job_id: str, thing: str, status: str, **details) -> dict:
    """A job execution event as AWS IoT Jobs publishes it (events-jobs.html)."""
    return {
        "eventType": "JOB_EXECUTION",
        "eventId": "cca89fa5-8a7f-4ced-8a0e-bc5edda1e9c7",
        "timestamp": 1_765_000_100,
        "operation": status.lower(),
        "jobId": job_id,
        "thingArn": client.thing_arn(thing),
        "status": status,
        "statusDetails": details,
    }


def forward_event(queue: str, job_id: str, thing: str, status: str, **details) -> None:
    topic = topics.job_execution_event_topic(job_id, status.lower())
    forward(queue, topic, execution_event(job_id, thing, status, **details))


def statuses(job) -> dict[str, str]:
    rows = JobExecution.objects.filter(job=job).values_list("device__device_id", "status")
    return dict(rows)


def mixed_job(job_id: str = "reboot-1"):
    on_aws = [aws_device_with_thing(f"cam-{n}") for n in range(2)]
    local = make_device("local-1")
    job = jobs.create_job(
        {
            "job_id": job_id,
            "document": {"operation": "reboot"},
            "targets": {"devices": ["cam-0", "cam-1", "local-1"]},
            "timeout": {"in_progress_timeout_in_minutes": 30},
        },
        actor="otto",
    )
    return job, on_aws, local


def test_a_job_with_devices_on_both_gateways_hands_the_aws_ones_to_one_aws_job(aws):
    job, on_aws, _ = mixed_job()
    engine.tick()

    assert statuses(job) == {"cam-0": "QUEUED", "cam-1": "QUEUED", "local-1": "QUEUED"}
    notified = set(OutboxMessage.objects.values_list("device_id", flat=True))
    assert notified == {"local-1"}  # the broker device is notified; AWS notifies its own
    assert job_delivery.create_due() == {"created": 1}

    described = client.client("iot").describe_job(jobId="reboot-1")["job"]
    assert sorted(described["targets"]) == sorted(client.thing_arn(d.device_id) for d in on_aws)
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    document = client.client("iot").get_job_document(jobId="reboot-1")["document"]
    assert orjson.loads(document) == {"operation": "reboot"}
    engine.tick()  # nothing is handed over twice
    assert AwsJob.objects.count() == 1


def test_execution_events_are_mirrored_once_and_never_backwards(aws):
    job, _, _ = mixed_job()
    engine.tick()
    job_delivery.create_due()
    queue = make_queue()
    forward_event(queue, "reboot-1", "cam-0", "SUCCEEDED", note="done")
    forward_event(queue, "reboot-1", "cam-1", "FAILED", reason="disk full")
    forward_event(queue, "reboot-1", "cam-1", "FAILED", reason="disk full")  # repeated
    result = drain(queue)

    assert result.counts["applied"] == 2 and result.counts["stale"] == 1
    assert statuses(job) == {"cam-0": "SUCCEEDED", "cam-1": "FAILED", "local-1": "QUEUED"}
    failed = JobExecution.objects.get(job=job, device__device_id="cam-1")
    assert failed.status_details == {"reason": "disk full"}
    assert failed.followed_up_at is not None  # AWS decides retries, not the engine

    forward_event(queue, "reboot-1", "cam-0", "CANCELED")  # a final state is final
    assert drain(queue).counts["stale"] == 1
    assert statuses(job)["cam-0"] == "SUCCEEDED"
    job.refresh_from_db()
    details = jobs.job_process_details(job)
    assert details["number_of_failed_things"] == 1
    assert details["number_of_unreleased_things"] == 0


def summary(thing: str, status: str, number: int = 1) -> dict:
    """One entry of ListJobExecutionsForJob as AWS documents it."""
    moment = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
    return {
        "thingArn": client.thing_arn(thing),
        "jobExecutionSummary": {
            "status": status,
            "queuedAt": moment,
            "startedAt": moment,
            "lastUpdatedAt": moment,
            "executionNumber": number,
        },
    }


def test_the_reconcile_reads_states_no_event_carries_and_retries_aws_made(aws):
    # moto lists executions but cannot move them (no iot-jobs-data): AWS's recorded answer.
    job, _, _ = mixed_job()
    engine.tick()
    job_delivery.create_due()
    iot = client.client("iot")
    with Stubber(iot) as stub:
        stub.add_response(
            "list_job_executions_for_job",
            {
                "executionSummaries": [
                    summary("cam-0", "IN_PROGRESS"),
                    summary("cam-1", "QUEUED", 2),
                ]
            },
            {"jobId": "reboot-1"},
        )
        assert job_mirror.reconcile() == 2
    assert statuses(job)["cam-0"] == "IN_PROGRESS"
    attempts = JobExecution.objects.filter(job=job, device__device_id="cam-1")
    assert sorted(attempts.values_list("execution_number", "superseded")) == [
        (1, True),
        (2, False),
    ]
    assert AwsJob.objects.get().reconciled_at is not None


def test_a_firmware_job_on_aws_carries_the_portals_signed_artifact_url(aws, settings):
    settings.PUBLIC_URL = "https://portal.example.com"
    aws_device_with_thing("cam-9")
    firmware = make_version("2.0.0", file_url="")
    firmware.artifact.name = "firmware/sensor-2.0.0.bin"
    firmware.save()
    job = jobs.create_job(
        {"job_id": "fw-1", "firmware": firmware.pk, "targets": {"devices": ["cam-9"]}},
        actor="otto",
    )
    engine.tick()
    job_delivery.create_due()
    document = orjson.loads(client.client("iot").get_job_document(jobId="fw-1")["document"])
    url = document["firmware"]["url"]
    assert url.startswith("https://portal.example.com/") and "signature=" in url
    assert document["afr_ota"]["files"][0]["update_data_url"] == url
    assert job.firmware_id == firmware.pk


def test_a_rollout_gate_acts_on_a_mirrored_failure(aws):
    devices = [aws_device_with_thing(f"pump-{n}", firmware_version="1.0.0") for n in range(3)]
    rollout = make_rollout(devices, [(3, {})], failure_threshold_count=1, failure_action="pause")
    rollouts.tick(at(0))
    wave_job = AwsJob.objects.get().job
    assert wave_job.wave.rollout == rollout
    job_delivery.create_due(now=at(1))
    queue = make_queue()
    forward_event(queue, AwsJob.objects.get().aws_job_id, "pump-1", "FAILED", reason="flash")
    drain(queue)

    rollouts.tick(at(10))

    rollout.refresh_from_db()
    assert rollout.status == "paused"
    failed = RolloutDevice.objects.get(device__device_id="pump-1")
    assert (failed.outcome, failed.failure) == ("failed", "FAILED")
    assert Rollout.objects.get(pk=rollout.pk).threshold_crossed_at == at(10)


def test_cancelling_the_portal_job_cancels_its_aws_job(aws):
    job, _, _ = mixed_job()
    engine.tick()
    job_delivery.create_due()
    jobs.cancel_job(job, actor="otto")
    assert job_delivery.cancel_due() == {"canceled": 1}
    assert client.client("iot").describe_job(jobId="reboot-1")["job"]["status"] == "CANCELED"
    assert statuses(job) == {"cam-0": "CANCELED", "cam-1": "CANCELED", "local-1": "CANCELED"}


def test_a_job_cancelled_before_aws_had_it_is_never_created_there(aws):
    job, _, _ = mixed_job()
    engine.tick()
    jobs.cancel_job(job, actor="otto")
    assert job_delivery.create_due() == {"canceled": 1}
    assert client.client("iot").list_jobs()["jobs"] == []


@pytest.mark.usefixtures("firmware_env")
def test_with_an_artifact_bucket_the_aws_job_carries_a_presigned_s3_url(aws, settings):
    settings.AWS_ARTIFACT_BUCKET = "fleet-firmware"
    client.client("s3").create_bucket(
        Bucket="fleet-firmware", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    data = b"firmware image " * 1000
    firmware = add("3.0.0", data)
    aws_device_with_thing("cam-8")
    jobs.create_job(
        {"job_id": "fw-s3", "firmware": firmware.pk, "targets": {"devices": ["cam-8"]}},
        actor="otto",
    )
    engine.tick()
    job_delivery.create_due()

    document = orjson.loads(client.client("iot").get_job_document(jobId="fw-s3")["document"])
    url = document["firmware"]["url"]
    assert url.startswith(aws.url) and "fleet-firmware" in url and "Signature" in url
    key = f"firmware/sensor/3.0.0/{firmware.checksum}.bin"
    stored = client.client("s3").get_object(Bucket="fleet-firmware", Key=key)["Body"].read()
    assert stored == data
