"""Jobs requests handled as one bridge batch (firmware/protocol/batch.py) on the real database:
the same rows, replies, notifications and events as one by one, with a number of statements
that does not grow with the batch."""

import importlib
import itertools
import random
import types
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.db import connection, transaction
from django.utils import timezone

from devices import credentials
from devices.choices import DeviceStatus
from devices.models import Device, DeviceEvent
from firmware import downloads
from firmware.models import Job, JobExecution
from firmware.protocol import service
from fleetportal import topics
from fleetportal.bridge.runner import Runner
from fleetportal.bridge.transport import Received
from fleetportal.models import OutboxMessage
from shadows.models import Shadow
from tests.conftest import make_device
from tests.firmware.helpers import make_version
from tests.sql import statements

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
_mids = itertools.count(1)


class Acks:
    """The broker side of the bridge's connection: records what the runner acknowledged."""

    def __init__(self):
        self.acked: list[int] = []

    def ack(self, received: Received) -> bool:
        self.acked.append(received.mid)
        return True


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    """Notifications and signed URLs read the clock; both runs must read the same one."""
    monkeypatch.setattr(timezone, "now", lambda: T0 + timedelta(seconds=30))
    monkeypatch.setattr(downloads, "time", types.SimpleNamespace(time=lambda: T0.timestamp()))


def request(thing: str, path: str, body=None, *, at: float = 1.0, dup: bool = False) -> Received:
    """A message as the bridge receives it on $aws/things/<thing>/jobs/<path>."""
    return message(f"$aws/things/{thing}/jobs/{path}", body, at=at, dup=dup)


def message(topic: str, body=None, *, at: float = 1.0, dup: bool = False) -> Received:
    payload = body if isinstance(body, bytes) else orjson.dumps(body or {})
    return Received(
        topic=topic,
        payload=payload,
        qos=1,
        mid=next(_mids),
        retain=False,
        generation=1,
        dup=dup,
        received_at=T0 + timedelta(seconds=at),
    )


def observed() -> dict:
    """Everything a device or an operator could see change."""
    return {
        "executions": list(JobExecution.objects.order_by("pk").values()),
        "outbox": [
            (m.topic, bytes(m.payload), m.device_id) for m in OutboxMessage.objects.order_by("id")
        ],
        # Presence (monitoring.presence) writes a device's coming online at the batch's end and
        # has its own batch tests; the jobs protocol's events are what is compared here.
        "events": list(
            DeviceEvent.objects.exclude(event_type__in=("device_online", "device_offline"))
            .order_by("id")
            .values_list("device__device_id", "event_type", "event_data")
        ),
        "devices": list(Device.objects.order_by("device_id").values_list("device_id", "status")),
        "shadows": list(Shadow.objects.order_by("pk").values_list("reported_state", "version")),
    }


def run(messages: list[Received], *, batched: bool) -> tuple[dict, int]:
    """Handle `messages` as one bridge batch, or one transaction each as the bridge does
    without batches; what came of it and the statements it took. Rolled back afterwards."""
    saved = transaction.savepoint()
    try:
        OutboxMessage.objects.all().delete()
        runner = Runner(Acks())
        with statements() as sent:
            if batched:
                runner.process = replayed  # the batch itself must get it right
                runner.process_batch(messages)
            else:
                for received in messages:
                    runner.process(received)
        assert runner.connection.acked == [m.mid for m in messages]
        return observed(), len(sent)
    finally:
        transaction.savepoint_rollback(saved)


def replayed(*args, **kwargs):
    raise AssertionError("the batch failed and was replayed one message at a time")


def jobs(*job_ids: str, **fields) -> list[Job]:
    return [Job.objects.create(job_id=j, document={"operation": j}, **fields) for j in job_ids]


def queue(device, *job_list: Job, minutes: int = 60) -> list[JobExecution]:
    """QUEUED executions, in this order of queue time."""
    start = T0 - timedelta(minutes=minutes)
    return [
        JobExecution.objects.create(
            job=job, device=device, queued_at=start + timedelta(seconds=n), last_updated_at=start
        )
        for n, job in enumerate(job_list)
    ]


def assert_same(messages: list[Received]) -> tuple[int, int]:
    """One batch and one by one give the same; returns their statement counts."""
    batch, batch_statements = run(messages, batched=True)
    one_by_one, one_by_one_statements = run(messages, batched=False)
    assert batch["outbox"] == one_by_one["outbox"]
    assert batch["executions"] == one_by_one["executions"]
    assert batch["events"] == one_by_one["events"]
    assert batch["devices"] == one_by_one["devices"]
    assert batch["shadows"] == one_by_one["shadows"]
    return batch_statements, one_by_one_statements


def test_a_mixed_batch_gives_what_one_by_one_gives():
    a, b, d, e, f = (
        make_device(name, status=DeviceStatus.ACTIVE, device_type="sensor")
        for name in ("batch-a", "batch-b", "batch-d", "batch-e", "batch-f")
    )
    make_device("batch-gone", status=DeviceStatus.DECOMMISSIONED)
    shared = jobs("j1", "j2", "j3", timeout_config={"in_progress_timeout_in_minutes": 30})
    queue(a, *shared)
    queue(b, *shared)
    queue(d, *shared)
    queue(e, *shared, minutes=30)
    version = make_version(file_url="", artifact="firmware/sensor/x/fw.bin")
    firmware_job = Job.objects.create(
        job_id="fw",
        firmware=version,
        document={"firmware": {"version": "2.0.0", "url": "https://portal/fw"}},
    )
    queue(f, firmware_job, shared[0])
    # Before the batch: d started j1 with token d1 (a repeat of it must change nothing), and
    # b started and finished j1 long ago (a redelivery of its start-next must not start j2).
    service.start_next("batch-d", orjson.dumps({"clientToken": "d1"}), now=T0)
    long_ago = T0 - timedelta(minutes=20)
    service.start_next("batch-e", orjson.dumps({"clientToken": "e1"}), now=long_ago)
    service.update("batch-e", "j1", orjson.dumps({"status": "SUCCEEDED"}), now=long_ago)
    details = {"zeta": "1", "b": "2", "aa": "3"}  # not in jsonb's key order

    messages = [
        request("batch-a", "start-next", {"clientToken": "a1", "statusDetails": details}),
        request("batch-b", "start-next", {"clientToken": "b1", "stepTimeoutInMinutes": 5}),
        request(
            "batch-a",
            "j1/update",
            {
                "status": "IN_PROGRESS",
                "expectedVersion": 2,
                "statusDetails": {"progress": "50", "a": "x"},
                "includeJobExecutionState": True,
                "clientToken": "a2",
            },
        ),
        request("batch-a", "j1/update", {"status": "IN_PROGRESS", "expectedVersion": 2}),
        request("batch-a", "get", {"clientToken": "a4"}),
        # Not isolated: the batch writes what it holds and reads its rows again after it.
        message(topics.device_topic("batch-a", "presence"), {"online": True}),
        message(topics.shadow_topic("batch-b", "", "update"), {"state": {"reported": {"x": 1}}}),
        request(
            "batch-a",
            "j1/update",
            {
                "status": "SUCCEEDED",
                "includeJobExecutionState": True,
                "includeJobDocument": True,
                "clientToken": "a5",
            },
        ),
        request("batch-a", "j1/update", {"status": "IN_PROGRESS", "clientToken": "a6"}),
        request("batch-a", "start-next", {"clientToken": "a7"}),
        request("batch-a", "start-next", {"clientToken": "a7"}),  # repeated: same answer
        request("batch-b", "j1/update", {"status": "DONE"}),
        request("batch-b", "j1/update", b"{not json"),
        request("batch-b", "nojob/update", {"status": "SUCCEEDED", "clientToken": "b2"}),
        request("batch-b", "j3/update", {"status": "IN_PROGRESS", "clientToken": "b3"}),
        request("batch-b", "j1/update", {"status": "FAILED", "statusDetails": {"why": "disk"}}),
        request("batch-d", "start-next", {"clientToken": "d1"}),  # repeats the one before
        request("batch-e", "start-next", {"clientToken": "e1"}, dup=True),
        request("batch-d", "j1/update", {"status": "SUCCEEDED", "clientToken": "d2"}),
        request("batch-d", "j1/update", {"status": "SUCCEEDED", "clientToken": "d2"}),
        request("batch-f", "start-next", {"clientToken": "f1"}),  # a firmware run starts
        request("batch-f", "fw/update", {"status": "IN_PROGRESS", "statusDetails": {"s": "dl"}}),
        request("batch-f", "$next/get", {"clientToken": "f2"}),
        request("batch-f", "fw/update", {"status": "SUCCEEDED", "clientToken": "f3"}),
        request("batch-gone", "start-next", {"clientToken": "g1"}),
        request("nobody", "j1/update", {"status": "SUCCEEDED"}),
        request("batch-a", "j2/update", {"status": "FAILED", "clientToken": "a8"}, dup=True),
        request("batch-a", "$next/update", {"status": "FAILED"}),  # InvalidTopic
        request("batch-a", "j3/get", {"includeJobDocument": False}),
        request("batch-a", "start-next", {"clientToken": "a9"}),
    ]
    batch_statements, one_by_one_statements = assert_same(messages)
    assert batch_statements < one_by_one_statements


def test_a_long_queue_is_notified_as_one_by_one():
    """More pending executions than the batch loads: lists stay exact, by the service when
    the loaded ones run out."""
    device = make_device("batch-long", status=DeviceStatus.ACTIVE)
    rows = queue(device, *jobs(*(f"long-{n:02d}" for n in range(40))))
    messages = []
    for row in rows[:14]:
        path = f"{row.job.job_id}/update"
        messages.append(request("batch-long", path, {"status": "IN_PROGRESS"}))
        messages.append(request("batch-long", path, {"status": "SUCCEEDED"}))
    # A QUEUED execution far back moved IN_PROGRESS becomes the head; one far back ends.
    messages.insert(3, request("batch-long", "long-30/update", {"status": "IN_PROGRESS"}))
    messages.insert(5, request("batch-long", "long-35/update", {"status": "REJECTED"}))
    assert_same(messages)


@pytest.mark.parametrize("seed", range(8))
def test_random_requests_give_what_one_by_one_gives(seed):
    """Devices sharing jobs, their requests in a random order with clientTokens drawn from a
    few (so repeats, and the same token with another request, happen), refusals, describes,
    redeliveries and step timers."""
    rng = random.Random(seed)  # noqa: S311 (a repeatable order, not a secret)
    devices = [make_device(f"rnd-{seed}-{k}", status=DeviceStatus.ACTIVE) for k in range(3)]
    job_ids = [f"rnd-{seed}-{n}" for n in range(5)]
    job_list = jobs(*job_ids[:3]) + jobs(*job_ids[3:], timeout_config=TIMEOUT)
    for device in devices:
        queue(device, *rng.sample(job_list, rng.randint(1, len(job_list))))
    messages = [random_request(rng, rng.choice(devices).device_id, job_ids, n) for n in range(40)]
    assert_same(messages)


TIMEOUT = {"in_progress_timeout_in_minutes": 20}


def random_request(rng: random.Random, thing: str, job_ids: list[str], n: int) -> Received:
    body: dict = {}
    if rng.random() < 0.8:
        body["clientToken"] = rng.choice(["t1", "t2", "t3", "t4", f"fresh-{n}"])
    kind = rng.choices(["start-next", "update", "get", "describe"], weights=[3, 6, 1, 1])[0]
    if kind == "update":
        statuses = ["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "QUEUED"]
        body["status"] = rng.choice(statuses)
        if rng.random() < 0.2:
            body["expectedVersion"] = rng.randint(1, 4)
        if rng.random() < 0.2:
            body["includeJobExecutionState"] = True
        if rng.random() < 0.2:
            body["stepTimeoutInMinutes"] = rng.choice([-1, 5, 60])
        path = f"{rng.choice(job_ids)}/update"
    elif kind == "describe":
        path = f"{rng.choice([*job_ids, '$next'])}/get"
    else:
        path = kind
    if kind in ("update", "start-next") and rng.random() < 0.3:
        body["statusDetails"] = {rng.choice(["zz", "a", "mm"]): str(n), "b": "x"}
    return request(thing, path, body, at=n / 100, dup=rng.random() < 0.05)


def statements_for(devices: int) -> int:
    """A batch of start-next, update IN_PROGRESS, update SUCCEEDED from each of `devices`."""
    shared = jobs(*(f"count-{devices}-{n}" for n in range(3)))
    messages = []
    for k in range(devices):
        thing = f"batch-count-{devices}-{k}"
        queue(make_device(thing, status=DeviceStatus.ACTIVE), *shared)
        credentials.mark_connected(thing)  # as a running bridge has (one query per device, once)
        job_id = shared[0].job_id
        messages += [
            request(thing, "start-next", {"clientToken": f"{thing}-1"}),
            request(thing, f"{job_id}/update", {"status": "IN_PROGRESS", "clientToken": "2"}),
            request(thing, f"{job_id}/update", {"status": "SUCCEEDED", "clientToken": "3"}),
        ]
    observed_, count = run(messages, batched=True)
    accepted = [t for t, _, _ in observed_["outbox"] if t.endswith("/accepted")]
    assert len(accepted) == 3 * devices
    notified = [t for t, _, _ in observed_["outbox"] if t.endswith("/notify-next")]
    assert len(notified) == devices
    return count


def test_a_batch_costs_the_same_statements_for_3_devices_as_for_40():
    assert statements_for(3) == statements_for(40)


def test_executions_started_before_start_tokens_get_theirs_from_what_they_remember():
    """The migration that adds start_token fills it for executions a start-next started
    before, so a repeat of that start-next still reaches the service from a batch."""
    device = make_device("batch-legacy", status=DeviceStatus.ACTIVE)
    started, other = queue(device, *jobs("legacy-1", "legacy-2"))
    service.start_next("batch-legacy", orjson.dumps({"clientToken": "old-1"}), now=T0)
    service.update("batch-legacy", "legacy-2", orjson.dumps({"status": "REJECTED"}), now=T0)
    JobExecution.objects.update(start_token="")  # as the rows were before the migration
    migration = importlib.import_module("firmware.migrations.0010_execution_start_token")

    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL_START_TOKENS)

    assert JobExecution.objects.get(pk=started.pk).start_token == "old-1"
    assert JobExecution.objects.get(pk=other.pk).start_token == ""  # never started
