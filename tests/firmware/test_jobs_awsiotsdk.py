"""The jobs protocol as AWS's own device SDK speaks it (awsiotsdk 1.31.0 on awscrt): a device
with a portal-issued certificate connects over MQTT 3.1.1 with `mtls_from_path`, uses
`awsiot.iotjobs.IotJobsClient`, and every answer and notification is parsed by the SDK's models
(device-protocol.md §0, §2). The real broker, bridge and engine run underneath."""

import itertools
import queue
import threading
from datetime import datetime

import pytest
from awscrt import mqtt, mqtt_request_response
from awsiot import (
    ServiceStreamOptions,
    V2ServiceException,
    iotjobs,
    mqtt5_client_builder,
    mqtt_connection_builder,
)

from devices.choices import DeviceStatus
from firmware import engine, jobs
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WAIT = 15  # seconds for any one answer: the bridge, the outbox and the broker in between
QOS = mqtt.QoS.AT_LEAST_ONCE
ESTABLISHED = mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
_things = itertools.count(1)  # the broker outlives a test: each test's device has its own id


class Inbox:
    """What the SDK delivered on each subscription, parsed by its models (None when the SDK
    could not parse the payload)."""

    def __init__(self):
        self.queues: dict[str, queue.Queue] = {}

    def callback(self, name: str):
        self.queues[name] = queue.Queue()
        return self.queues[name].put

    def next(self, name: str):
        try:
            item = self.queues[name].get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"the SDK received nothing on {name} within {WAIT} s") from None
        assert item is not None, f"the SDK could not parse what came on {name}"
        return item

    def nothing_on(self, name: str, seconds: float = 1.0) -> None:
        with pytest.raises(queue.Empty):
            self.queues[name].get(timeout=seconds)


def connection_options(broker, device_id: str) -> dict:
    """What the SDK's builders need: the test broker's device listener, the device's
    portal-issued certificate and key as files, the CA file, client id = thing name."""
    device = credentialed(device_id, status=DeviceStatus.ACTIVE)
    identity = identity_of(broker, device)
    return {
        "endpoint": broker.host,
        "port": broker.device_port,
        "cert_filepath": str(identity.cert_file),
        "pri_key_filepath": str(identity.key_file),
        "ca_filepath": str(broker.chain_file),
        "client_id": device.device_id,
    }


@pytest.fixture
def sdk_device(bridge, broker):
    """A device connected through awscrt over MQTT 3.1.1 as AWS's jobs sample connects: a
    persistent session (the builder's default) and a 30 s keep-alive."""
    options = connection_options(broker, f"sdk-thing-{next(_things)}")
    connection = mqtt_connection_builder.mtls_from_path(**options, keep_alive_secs=30)
    connection.connect().result(WAIT)
    try:
        yield options["client_id"], iotjobs.IotJobsClient(connection)
    finally:
        connection.disconnect().result(WAIT)


def subscribe_all(client: iotjobs.IotJobsClient, thing: str, job_id: str) -> Inbox:
    """The subscriptions AWS's jobs sample makes, accepted and rejected for each operation."""
    inbox = Inbox()
    pairs = [
        (
            client.subscribe_to_get_pending_job_executions_accepted,
            client.subscribe_to_get_pending_job_executions_rejected,
            iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing),
            "get",
        ),
        (
            client.subscribe_to_start_next_pending_job_execution_accepted,
            client.subscribe_to_start_next_pending_job_execution_rejected,
            iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
            "start-next",
        ),
        (
            client.subscribe_to_update_job_execution_accepted,
            client.subscribe_to_update_job_execution_rejected,
            iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id=job_id),
            "update",
        ),
        (
            client.subscribe_to_describe_job_execution_accepted,
            client.subscribe_to_describe_job_execution_rejected,
            iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id=job_id),
            "describe",
        ),
    ]
    futures = []
    for accepted, rejected, request, name in pairs:
        futures.append(accepted(request, QOS, inbox.callback(f"{name}/accepted"))[0])
        futures.append(rejected(request, QOS, inbox.callback(f"{name}/rejected"))[0])
    futures.append(
        client.subscribe_to_next_job_execution_changed_events(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
            QOS,
            inbox.callback("notify-next"),
        )[0]
    )
    futures.append(
        client.subscribe_to_job_executions_changed_events(
            iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing),
            QOS,
            inbox.callback("notify"),
        )[0]
    )
    for future in futures:
        future.result(WAIT)
    return inbox


def update(client, thing: str, version: int, status: str, **fields):
    request = iotjobs.UpdateJobExecutionRequest(
        thing_name=thing, job_id="sdk-upgrade", status=status, expected_version=version, **fields
    )
    client.publish_update_job_execution(request, QOS).result(WAIT)


def test_the_aws_sdk_jobs_client_runs_a_job_from_notification_to_success(sdk_device):
    thing, client = sdk_device
    inbox = subscribe_all(client, thing, "sdk-upgrade")

    document = {"operation": "upgrade", "version": "2.0.0"}
    jobs.create_job(
        {"job_id": "sdk-upgrade", "targets": {"devices": [thing]}, "document": document},
        actor="operator",
    )
    assert engine.tick().released == 1

    changed = inbox.next("notify")  # JobExecutionsChangedEvent
    assert isinstance(changed, iotjobs.JobExecutionsChangedEvent)
    assert [s.job_id for s in changed.jobs["QUEUED"]] == ["sdk-upgrade"]
    assert isinstance(changed.timestamp, datetime)
    head = inbox.next("notify-next")  # NextJobExecutionChangedEvent
    assert head.execution.job_id == "sdk-upgrade" and head.execution.status == "QUEUED"
    assert head.execution.job_document == document

    client.publish_get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=thing, client_token="get-1"), QOS
    ).result(WAIT)
    pending = inbox.next("get/accepted")
    assert pending.client_token == "get-1" and pending.in_progress_jobs == []
    (queued,) = pending.queued_jobs
    assert (queued.job_id, queued.version_number, queued.execution_number) == (
        "sdk-upgrade",
        1,
        1,
    )
    assert isinstance(queued.queued_at, datetime) and queued.started_at is None

    client.publish_start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=thing,
            client_token="start-1",
            status_details={"step": "download"},
            step_timeout_in_minutes=30,
        ),
        QOS,
    ).result(WAIT)
    started = inbox.next("start-next/accepted").execution
    assert (started.job_id, started.thing_name, started.status) == (
        "sdk-upgrade",
        thing,
        "IN_PROGRESS",
    )
    assert (started.version_number, started.execution_number) == (2, 1)
    assert started.status_details == {"step": "download"}
    assert started.job_document == document
    assert isinstance(started.started_at, datetime) and started.queued_at <= started.started_at

    update(
        client,
        thing,
        2,
        "IN_PROGRESS",
        status_details={"step": "install", "progress": "50"},
        include_job_execution_state=True,
        client_token="update-1",
    )
    progress = inbox.next("update/accepted")
    assert progress.client_token == "update-1"
    assert progress.execution_state.status == "IN_PROGRESS"
    assert progress.execution_state.version_number == 3
    assert progress.execution_state.status_details == {"step": "install", "progress": "50"}

    client.publish_describe_job_execution(
        iotjobs.DescribeJobExecutionRequest(
            thing_name=thing, job_id="sdk-upgrade", include_job_document=True, client_token="d-1"
        ),
        QOS,
    ).result(WAIT)
    described = inbox.next("describe/accepted").execution
    assert (described.status, described.version_number) == ("IN_PROGRESS", 3)
    assert described.status_details == {"step": "install", "progress": "50"}
    assert described.job_document == document

    update(client, thing, 3, "SUCCEEDED", include_job_document=True, client_token="update-2")
    done = inbox.next("update/accepted")
    assert done.client_token == "update-2" and done.job_document == document
    assert inbox.next("notify").jobs == {}  # nothing pending any more
    assert inbox.next("notify-next").execution is None
    inbox.nothing_on("notify")  # start-next and IN_PROGRESS sent none (§2.5)


def test_the_aws_sdk_parses_refusals_as_rejected_errors(sdk_device):
    thing, client = sdk_device
    inbox = subscribe_all(client, thing, "sdk-upgrade")
    jobs.create_job(
        {"job_id": "sdk-upgrade", "targets": {"devices": [thing]}, "document": {"op": "x"}},
        actor="operator",
    )
    engine.tick()
    inbox.next("notify")

    update(client, thing, 7, "IN_PROGRESS", client_token="stale")
    refused = inbox.next("update/rejected")
    assert isinstance(refused, iotjobs.RejectedError)
    assert refused.code == iotjobs.RejectedErrorCode.VERSION_MISMATCH
    assert refused.client_token == "stale" and isinstance(refused.timestamp, datetime)
    assert (refused.execution_state.status, refused.execution_state.version_number) == (
        "QUEUED",
        1,
    )

    update(client, thing, 1, "SUCCEEDED", client_token="finish")
    inbox.next("update/accepted")
    # An update of a finished execution: InvalidStateTransition with its state, as AWS answers.
    update(client, thing, 2, "IN_PROGRESS", client_token="again")
    again = inbox.next("update/rejected")
    assert again.code == iotjobs.RejectedErrorCode.INVALID_STATE_TRANSITION
    assert (again.execution_state.status, again.client_token) == ("SUCCEEDED", "again")
    client.publish_describe_job_execution(
        iotjobs.DescribeJobExecutionRequest(
            thing_name=thing, job_id="sdk-upgrade", client_token="late"
        ),
        QOS,
    ).result(WAIT)
    terminal = inbox.next("describe/rejected")
    assert terminal.code == iotjobs.RejectedErrorCode.TERMINAL_STATE_REACHED
    assert terminal.client_token == "late"


def test_the_v2_jobs_client_over_mqtt5_matches_answers_by_client_token(bridge, broker):
    """IotJobsClientV2 as AWS's current samples use it: MQTT 5, a fresh clientToken per request,
    answers matched by topic + clientToken (device-protocol.md §0.1, §0.8)."""
    connected = threading.Event()
    protocol_client = mqtt5_client_builder.mtls_from_path(
        **connection_options(broker, "sdk-v2-thing"),
        on_lifecycle_connection_success=lambda data: connected.set(),
    )
    protocol_client.start()
    try:
        assert connected.wait(WAIT)
        options = mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2,
            max_streaming_subscriptions=2,
            operation_timeout_in_seconds=30,
        )
        client = iotjobs.IotJobsClientV2(protocol_client, options)
        heads: queue.Queue = queue.Queue()
        subscribed = threading.Event()
        stream = client.create_next_job_execution_changed_stream(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name="sdk-v2-thing"),
            ServiceStreamOptions(
                incoming_event_listener=heads.put,
                subscription_status_listener=lambda status: (
                    status.type == ESTABLISHED and subscribed.set()
                ),
            ),
        )
        stream.open()
        assert subscribed.wait(WAIT)

        jobs.create_job(
            {"job_id": "v2-job", "targets": {"devices": ["sdk-v2-thing"]}, "document": {"n": 1}},
            actor="operator",
        )
        engine.tick()
        assert heads.get(timeout=WAIT).execution.job_id == "v2-job"

        started = client.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name="sdk-v2-thing")
        ).result(WAIT)
        assert (started.execution.status, started.execution.version_number) == ("IN_PROGRESS", 2)
        with pytest.raises(V2ServiceException) as refused:
            client.update_job_execution(
                iotjobs.UpdateJobExecutionRequest(
                    thing_name="sdk-v2-thing",
                    job_id="v2-job",
                    status="SUCCEEDED",
                    expected_version=1,
                )
            ).result(WAIT)
        assert refused.value.modeled_error.code == "VersionMismatch"
        done = client.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name="sdk-v2-thing", job_id="v2-job", status="SUCCEEDED", expected_version=2
            )
        ).result(WAIT)
        assert done.execution_state is None and isinstance(done.timestamp, datetime)
        assert heads.get(timeout=WAIT).execution is None  # nothing pending any more
    finally:
        protocol_client.stop()
