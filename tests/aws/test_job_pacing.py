"""A staged rollout's pacing for its devices on AWS IoT Core: the wave's maintenance window
goes to AWS (schedulingConfig.maintenanceWindows, UTC only: another zone is refused), and its
start deadline is enforced by the portal (CancelJobExecution, then not_started like a broker
device)."""

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from django.test import Client
from django.urls import reverse

from aws_gateway import client, job_delivery, job_mirror, start_deadline
from aws_gateway.models import AwsJob
from devices.models import Device
from firmware import engine, jobs
from firmware.models import JobExecution
from firmware.rollouts import engine as rollouts
from firmware.rollouts.models import Rollout, RolloutDevice
from tests.aws import helpers
from tests.aws.gateway_field import put_on_aws
from tests.aws.helpers import Injection, aws_device_with_thing, injected, response
from tests.conftest import make_device
from tests.firmware.helpers import at, make_version
from tests.firmware.rollouts.test_engine import make_rollout

pytestmark = pytest.mark.django_db

NIGHTLY = "cron(0 2 * * ? *)"
NOT_ON_AWS = "ResourceNotFoundException"


def pumps(count: int) -> list:
    return [aws_device_with_thing(f"pump-{n}", firmware_version="1.0.0") for n in range(count)]


def aws_execution(aws_job_id: str, thing: str) -> str:
    execution = client.client("iot").describe_job_execution(jobId=aws_job_id, thingName=thing)
    return execution["execution"]["status"]


def test_a_waves_window_in_utc_reaches_aws_as_its_maintenance_window(aws):
    make_rollout(pumps(2), [(2, {})], window_cron=NIGHTLY, window_duration_minutes=90)
    rollouts.tick(at(minutes=0))
    assert job_delivery.create_due(now=at(minutes=1)) == {"created": 1}

    row = AwsJob.objects.get()
    described = client.client("iot").describe_job(jobId=row.aws_job_id)["job"]
    assert described["schedulingConfig"] == {
        "maintenanceWindows": [{"startTime": NIGHTLY, "durationInMinutes": 90}]
    }
    # AWS delivers nothing before the window: the start deadline runs from its opening.
    assert start_deadline.started_by(row) == datetime(2030, 1, 8, 2, 0, tzinfo=UTC)


def test_a_rollout_with_a_window_outside_utc_is_refused_when_aws_devices_are_targets(
    aws, operator_api
):
    firmware = make_version("2.0.0")
    aws_device_with_thing("pump-1", firmware_version="1.0.0")
    make_device("local-1", firmware_version="1.0.0")
    body = {
        "rollout_id": "nightly",
        "firmware": str(firmware.pk),
        "targets": {"devices": ["pump-1", "local-1"]},
        "waves": [{"selector": "percent", "percent": 100}],
        "window": {"cron": NIGHTLY, "duration_in_minutes": 60, "timezone": "Europe/Berlin"},
    }
    refused = operator_api.post("/api/v1/rollouts/", body, format="json")

    assert refused.status_code == 400
    message = refused.json()["window"][0]
    assert message.startswith("window_timezone:") and "UTC" in message and "pump-1" in message
    assert not Rollout.objects.exists()

    body["targets"] = {"devices": ["local-1"]}  # the broker follows any zone
    assert operator_api.post("/api/v1/rollouts/", body, format="json").status_code == 201


def test_a_window_outside_utc_that_reached_aws_fails_its_devices_with_the_reason(aws):
    # A device moved to AWS after the rollout started: its wave's job is never sent unwindowed.
    make_rollout(
        pumps(1), [(1, {})], window_cron=NIGHTLY, window_duration_minutes=60,
        window_timezone="Europe/Berlin",
    )  # fmt: skip
    rollouts.tick(at(minutes=0))
    assert job_delivery.create_due(now=at(minutes=1)) == {"refused": 1}

    assert client.client("iot").list_jobs()["jobs"] == []
    execution = JobExecution.objects.get(device__device_id="pump-0")
    assert execution.status == "FAILED"
    assert "UTC" in execution.status_details["reason"]
    assert "Europe/Berlin" in execution.status_details["reason"]


def listed(*entries: tuple[str, str]):
    """ListJobExecutionsForJob as AWS answers it (moto's executions never move)."""
    summaries = [
        {
            "thingArn": client.thing_arn(thing),
            "jobExecutionSummary": {
                "status": status,
                "queuedAt": at().timestamp(),
                "lastUpdatedAt": at(minutes=5).timestamp(),
                "executionNumber": 1,
            },
        }
        for thing, status in entries
    ]
    return Injection(None, forever=lambda: response(200, {"executionSummaries": summaries}))


def test_an_aws_execution_not_started_by_the_deadline_is_cancelled_on_aws_and_counted(aws):
    rollout = make_rollout(pumps(2), [(2, {})], start_deadline_minutes=30)
    rollouts.tick(at(minutes=0))
    job_delivery.create_due(now=at(minutes=1))
    aws_job_id = AwsJob.objects.get().aws_job_id
    answer = listed(("pump-0", "IN_PROGRESS"), ("pump-1", "QUEUED"))

    with injected("iot", "ListJobExecutionsForJob", answer):
        job_mirror.reconcile(now=at(minutes=20))  # before the deadline: nothing is cancelled
        rollouts.tick(at(minutes=40))  # the engine leaves AWS's executions to the gateway
        assert JobExecution.objects.get(device__device_id="pump-1").status == "QUEUED"
        assert job_mirror.reconcile(now=at(minutes=40)) == 1

    assert aws_execution(aws_job_id, "pump-1") == "CANCELED"
    assert aws_execution(aws_job_id, "pump-0") == "QUEUED"  # it started: never cancelled
    silent = JobExecution.objects.get(device__device_id="pump-1")
    assert (silent.status, silent.status_details) == ("CANCELED", {"reason": "not_started"})
    assert JobExecution.objects.get(device__device_id="pump-0").status == "IN_PROGRESS"

    rollouts.tick(at(minutes=41))
    counted = RolloutDevice.objects.get(rollout=rollout, device__device_id="pump-1")
    assert (counted.outcome, counted.failure) == ("failed", "NOT_STARTED")


def test_an_execution_aws_no_longer_has_ends_at_the_deadline_all_the_same(aws):
    # moto answers a cancel of an execution it lacks with a 500: AWS's documented 404 instead.
    make_rollout(pumps(1), [(1, {})], start_deadline_minutes=30)
    rollouts.tick(at(minutes=0))
    job_delivery.create_due(now=at(minutes=1))
    gone = Injection(
        None, forever=lambda: response(404, {"message": "No job execution"}, NOT_ON_AWS)
    )

    with injected("iot", "CancelJobExecution", gone):
        assert start_deadline.cancel_not_started(AwsJob.objects.get(), at(minutes=40)) == 1
    assert JobExecution.objects.get().status_details == {"reason": "not_started"}


def test_aws_unreachable_leaves_the_execution_for_the_next_reconcile(aws):
    make_rollout(pumps(1), [(1, {})], start_deadline_minutes=30)
    rollouts.tick(at(minutes=0))
    job_delivery.create_due(now=at(minutes=1))
    throttled = Injection(None, forever=helpers.throttled)

    with injected("iot", "CancelJobExecution", throttled), pytest.raises(ClientError):
        start_deadline.cancel_not_started(AwsJob.objects.get(), at(minutes=40))
    assert JobExecution.objects.get().status == "QUEUED"
    assert start_deadline.cancel_not_started(AwsJob.objects.get(), at(minutes=41)) == 1


def test_a_round_stopped_part_way_keeps_the_reason_of_those_it_cancelled(aws):
    # Each execution ends in the portal as soon as AWS cancelled it, with the reason also sent to
    # AWS: the cancellation's own event, mirrored from the queue, says not_started too.
    make_rollout(pumps(2), [(2, {})], start_deadline_minutes=30)
    rollouts.tick(at(minutes=0))
    job_delivery.create_due(now=at(minutes=1))
    first_then_throttled = Injection([lambda: None], forever=helpers.throttled)
    sent: list[dict] = []
    events = client.client("iot").meta.events
    asked = "before-parameter-build.iot.CancelJobExecution"

    def record(params, **_):
        sent.append(dict(params))

    events.register(asked, record)

    with injected("iot", "CancelJobExecution", first_then_throttled), pytest.raises(ClientError):
        start_deadline.cancel_not_started(AwsJob.objects.get(), at(minutes=40))
    events.unregister(asked, record)

    ended = JobExecution.objects.filter(status="CANCELED")
    assert [e.status_details for e in ended] == [{"reason": "not_started"}]
    assert JobExecution.objects.filter(status="QUEUED").count() == 1
    assert sent[0]["statusDetails"] == {"reason": "not_started"}


def test_a_device_moved_between_gateways_mid_wave_is_ended_where_its_execution_runs(aws):
    # The start deadline follows the execution, not the device's gateway of the moment.
    pump, valve = pumps(2)
    Device.objects.filter(pk=valve.pk).update(gateway="mosquitto")
    make_rollout([pump, valve], [(2, {})], start_deadline_minutes=30)
    rollouts.tick(at(minutes=0))  # valve released by the engine, pump handed to AWS
    job_delivery.create_due(now=at(minutes=1))
    put_on_aws(valve)
    Device.objects.filter(pk=pump.pk).update(gateway="mosquitto")

    rollouts.tick(at(minutes=40))

    broker_run = JobExecution.objects.get(device=valve)
    assert (broker_run.status, broker_run.status_details) == ("CANCELED", {"reason": "not_started"})
    assert JobExecution.objects.get(device=pump).status == "QUEUED"  # AWS's to end
    assert start_deadline.cancel_not_started(AwsJob.objects.get(), at(minutes=41)) == 1
    assert aws_execution(AwsJob.objects.get().aws_job_id, "pump-0") == "CANCELED"


def test_devices_moved_to_aws_after_the_creation_stop_the_start(
    aws, operator_api, client, operator
):
    firmware = make_version("2.0.0")
    device = make_device("local-1", firmware_version="1.0.0")
    body = {
        "rollout_id": "nightly",
        "firmware": str(firmware.pk),
        "targets": {"devices": ["local-1"]},
        "waves": [{"selector": "percent", "percent": 100}],
        "window": {"cron": NIGHTLY, "duration_in_minutes": 60, "timezone": "device_local"},
    }
    assert operator_api.post("/api/v1/rollouts/", body, format="json").status_code == 201
    put_on_aws(device)

    refused = operator_api.post("/api/v1/rollouts/nightly/start/", {}, format="json")
    assert refused.status_code == 400 and "UTC" in refused.json()["window"][0]
    browser = Client()
    browser.force_login(operator)
    url = reverse("admin:firmware_rollout_action", args=["nightly", "start"])
    page = browser.post(url, follow=True).content.decode()
    assert "Not started: window: window_timezone:" in page and "local-1" in page
    assert Rollout.objects.get().status == "draft"


def test_a_plain_jobs_maintenance_windows_go_to_aws(aws):
    aws_device_with_thing("cam-1")
    window = {"start_time": "cron(0 12 ? * MON *)", "duration_in_minutes": 30}
    jobs.create_job(
        {
            "job_id": "reboot-1",
            "document": {"operation": "reboot"},
            "targets": {"devices": ["cam-1"]},
            "scheduling": {"maintenance_windows": [window]},
        },
        actor="otto",
    )
    engine.tick(at(minutes=5))  # T0 is a Monday 12:00 UTC: inside the window
    job_delivery.create_due(now=at(minutes=6))
    described = client.client("iot").describe_job(jobId="reboot-1")["job"]
    assert described["schedulingConfig"] == {
        "maintenanceWindows": [{"startTime": "cron(0 12 ? * MON *)", "durationInMinutes": 30}]
    }
