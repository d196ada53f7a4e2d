"""The jobs protocol over a real Mosquitto and the bridge, from a device with a portal-issued
certificate subscribed as the SDK's jobs client subscribes (device-protocol.md §0.2, §2)."""

import orjson
import pytest

from devices.choices import DeviceStatus
from firmware.choices import ExecutionStatus as S
from firmware.models import JobExecution
from firmware.protocol import service
from tests.devices.credential_helpers import credentialed, identity_of
from tests.firmware.jobs_helpers import make_job, queue

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def connect(broker, device_client, device_id: str):
    device = credentialed(device_id, status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))
    j = f"$aws/things/{device_id}/jobs"
    # As IotJobsClientV2 subscribes, plus the notifications.
    for topic in ("get/+", "start-next/+", "+/get/+", "+/update/+", "notify", "notify-next"):
        client.subscribe(f"{j}/{topic}")
    return device.device, client, j


def payload(message) -> dict:
    return orjson.loads(message.payload)


def ask(client, topic: str, reply: str, **fields) -> dict:
    """Publish a request and return its reply; messages before it (notifications written in
    the same transaction) are put back in the client's queue, in order."""
    client.publish(topic, orjson.dumps(fields))
    skipped = []
    while True:
        message = client.expect(timeout=10)
        if message.topic == reply:
            break
        skipped.append(message)
    rest = []
    while not client.messages.empty():
        rest.append(client.messages.get_nowait())
    for kept in skipped + rest:
        client.messages.put(kept)
    return payload(message)


def test_a_device_runs_a_job_from_notification_to_success(bridge, broker, device_client):
    device, client, j = connect(broker, device_client, "jobs-mqtt-1")

    queue(make_job("upgrade", document={"operation": "upgrade"}), device)
    notify = payload(client.expect(f"{j}/notify", timeout=10))
    assert [s["jobId"] for s in notify["jobs"]["QUEUED"]] == ["upgrade"]
    notify_next = payload(client.expect(f"{j}/notify-next"))
    assert notify_next["execution"]["jobDocument"] == {"operation": "upgrade"}

    pending = ask(client, f"{j}/get", f"{j}/get/accepted", clientToken="g-1")
    assert pending["clientToken"] == "g-1" and pending["inProgressJobs"] == []
    assert [s["jobId"] for s in pending["queuedJobs"]] == ["upgrade"]

    started = ask(
        client,
        f"{j}/start-next",
        f"{j}/start-next/accepted",
        clientToken="s-1",
        statusDetails={"step": "download"},
    )
    assert started["execution"]["status"] == "IN_PROGRESS"
    assert started["execution"]["versionNumber"] == 2

    progress = ask(
        client,
        f"{j}/upgrade/update",
        f"{j}/upgrade/update/accepted",
        status="IN_PROGRESS",
        expectedVersion="2",  # as a C demo sends it
        clientToken="u-1",
    )
    assert set(progress) == {"timestamp", "clientToken"} and progress["clientToken"] == "u-1"

    done = ask(
        client,
        f"{j}/upgrade/update",
        f"{j}/upgrade/update/accepted",
        status="SUCCEEDED",
        expectedVersion=3,
        includeJobExecutionState=True,
        clientToken="u-2",
    )
    assert done["executionState"] == {
        "status": "SUCCEEDED",
        "versionNumber": 4,
        "statusDetails": {"step": "download"},
    }
    assert payload(client.expect(f"{j}/notify"))["jobs"] == {}
    assert set(payload(client.expect(f"{j}/notify-next"))) == {"timestamp"}
    client.expect_nothing(1.0)  # start-next and IN_PROGRESS updates sent no notification


def test_a_new_execution_behind_the_head_is_notified_without_notify_next(
    bridge, broker, device_client
):
    device, client, j = connect(broker, device_client, "jobs-mqtt-2")
    queue(make_job("first"), device)
    client.expect(f"{j}/notify", timeout=10)
    client.expect(f"{j}/notify-next")
    queue(make_job("second"), device)
    notify = payload(client.expect(f"{j}/notify", timeout=10))
    assert [s["jobId"] for s in notify["jobs"]["QUEUED"]] == ["first", "second"]
    client.expect_nothing(1.0)

    ask(client, f"{j}/second/update", f"{j}/second/update/accepted", status="IN_PROGRESS")
    notify_next = payload(client.expect(f"{j}/notify-next", timeout=10))
    assert notify_next["execution"]["jobId"] == "second"  # it became the head (§2.5)


def test_each_refusal_reaches_the_device_on_rejected_with_its_code(bridge, broker, device_client):
    device, client, j = connect(broker, device_client, "jobs-mqtt-3")
    queue(make_job("m"), device, version_number=5)
    queue(make_job("done"), device, status=S.SUCCEEDED)
    client.expect(f"{j}/notify", timeout=10)
    client.expect(f"{j}/notify-next")

    def rejected(topic: str, raw: bytes) -> dict:
        client.publish(topic, raw)
        return payload(client.expect(f"{topic}/rejected", timeout=10))

    cases = [
        (f"{j}/m/update", b"{oops", "InvalidJson"),
        (
            f"{j}/m/update",
            b'{"status":"IN_PROGRESS","statusDetails":{"bad key":"v"},"clientToken":"c"}',
            "InvalidRequest",
        ),
        (f"{j}/nope/update", b'{"status":"IN_PROGRESS","clientToken":"c"}', "ResourceNotFound"),
        (
            f"{j}/m/update",
            b'{"status":"IN_PROGRESS","expectedVersion":"4","clientToken":"c"}',
            "VersionMismatch",
        ),
        (
            f"{j}/done/update",
            b'{"status":"IN_PROGRESS","clientToken":"c"}',
            "InvalidStateTransition",
        ),
        (f"{j}/done/get", b'{"clientToken":"c"}', "TerminalStateReached"),
        (f"{j}/job.1/update", b'{"status":"IN_PROGRESS","clientToken":"c"}', "InvalidTopic"),
        (f"{j}/$next/update", b'{"status":"IN_PROGRESS","clientToken":"c"}', "InvalidTopic"),
    ]
    for topic, raw, code in cases:
        document = rejected(topic, raw)
        assert document["code"] == code, (topic, document)
        assert isinstance(document["timestamp"], int) and document["message"]
        if code != "InvalidJson":
            assert document["clientToken"] == "c", (topic, document)
        if code in ("VersionMismatch", "InvalidStateTransition"):
            assert "status" in document["executionState"]
    assert JobExecution.objects.get(job__job_id="m").version_number == 5


def test_a_handler_failure_is_an_internal_error(bridge, broker, device_client, monkeypatch):
    _device, client, j = connect(broker, device_client, "jobs-mqtt-4")

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(service, "get_pending", broken)
    document = ask(client, f"{j}/get", f"{j}/get/rejected", clientToken="c")
    assert (document["code"], document["clientToken"]) == ("InternalError", "c")


def test_a_duplicated_update_changes_nothing_twice(bridge, broker, device_client):
    device, client, j = connect(broker, device_client, "jobs-mqtt-5")
    queue(make_job("m"), device)
    queue(make_job("n"), device)
    request = orjson.dumps({"status": "SUCCEEDED", "clientToken": "dup-1"})
    client.publish(f"{j}/m/update", request)
    client.publish(f"{j}/m/update", request)  # resent, as after a lost connection
    received = []
    while True:
        try:
            received.append(client.expect(timeout=2.0))
        except AssertionError:
            break
    by_topic = {}
    for message in received:
        by_topic.setdefault(message.topic, []).append(payload(message))
    first, second = by_topic[f"{j}/m/update/accepted"]
    assert first == second
    # Two for queueing m and n, one for m finishing: not a second one for the repeat.
    assert len(by_topic[f"{j}/notify"]) == 3
    assert JobExecution.objects.get(job__job_id="m").version_number == 2


def test_a_notification_made_while_the_broker_is_down_arrives_when_it_returns(
    bridge, broker, device_client
):
    device = credentialed("jobs-mqtt-6", status=DeviceStatus.ACTIVE)
    # A persistent session, as devices keep: the subscription survives the broker's restart.
    client = device_client(identity_of(broker, device), clean_session=False)
    j = "$aws/things/jobs-mqtt-6/jobs"
    client.subscribe(f"{j}/notify-next")
    with broker.stopped():
        queue(make_job("late"), device.device)
    notify_next = payload(client.expect(f"{j}/notify-next", timeout=15))
    assert notify_next["execution"]["jobId"] == "late"
