"""The engine's release (firmware/release.py): a batch of targets becomes QUEUED executions whose
devices get exactly the notify and notify-next that queuing them one at a time would send, for
a constant number of queries whatever the batch's size."""

import re
from datetime import timedelta

import orjson
import pytest
from django.db import connection, transaction
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from firmware import engine, notifications
from firmware.models import Job, JobExecution
from fleetportal.models import OutboxMessage
from tests.conftest import make_device, make_group
from tests.firmware.helpers import at, make_job, make_version, start

pytestmark = pytest.mark.django_db

NOW = at()


def pending_job(job_id: str, device, *, minutes: int) -> JobExecution:
    """An execution of another job, QUEUED `minutes` from NOW (negative: before)."""
    job = Job.objects.create(job_id=job_id, document={"operation": job_id})
    when = NOW + timedelta(minutes=minutes)
    return JobExecution.objects.create(job=job, device=device, queued_at=when, last_updated_at=when)


def released_by_the_engine(job: Job) -> None:
    assert engine.tick(NOW).released == job.target_count


def released_one_at_a_time(job: Job) -> None:
    """The reference: each target queued by itself, its heads read before and its notifications
    built from its rows read back after (what the engine did before firmware.release)."""
    for target in job.targets.order_by("id"):
        earlier = JobExecution.objects.filter(job=job, device_id=target.device_id)
        number = (earlier.aggregate(n=Max("execution_number"))["n"] or 0) + 1
        before = notifications.heads([target.device_id])
        JobExecution.objects.create(
            job=job,
            device_id=target.device_id,
            execution_number=number,
            queued_at=NOW,
            last_updated_at=NOW,
        )
        notifications.send_changes([target.device_id], before)


def sent_per_device(release) -> dict[str, list[tuple[str, dict]]]:
    """What `release` puts in the outbox, per device in order (the order a device receives), then
    undone, so the other way can run on the same rows. Timestamps are the wall clock of the
    send: checked here, then left out of the comparison."""
    OutboxMessage.objects.all().delete()
    savepoint = transaction.savepoint()
    earliest = int(timezone.now().timestamp())
    release()
    latest = int(timezone.now().timestamp())
    sent: dict[str, list[tuple[str, dict]]] = {}
    for message in OutboxMessage.objects.order_by("id"):
        body = orjson.loads(bytes(message.payload))
        assert earliest <= body.pop("timestamp") <= latest
        sent.setdefault(message.device_id, []).append((message.topic, body))
    transaction.savepoint_rollback(savepoint)
    return sent


def test_a_fresh_release_sends_what_one_at_a_time_sends():
    group = make_group("fresh")
    devices = [make_device(f"fresh-{n}", group=group) for n in range(4)]
    job = make_job("fresh-job", groups=[group], now=NOW)
    # An earlier attempt, over: the new execution is number 2 and still the whole list.
    JobExecution.objects.create(
        job=job, device=devices[3], status="REMOVED", queued_at=NOW - timedelta(hours=1)
    )

    ours = sent_per_device(lambda: released_by_the_engine(job))
    theirs = sent_per_device(lambda: released_one_at_a_time(job))

    assert ours == theirs
    thing = devices[3].device_id
    assert [topic for topic, _ in ours[thing]] == [
        f"$aws/things/{thing}/jobs/notify",
        f"$aws/things/{thing}/jobs/notify-next",
    ]
    assert ours[thing][1][1]["execution"] == {
        "jobId": "fresh-job",
        "thingName": thing,
        "status": "QUEUED",
        "queuedAt": int(NOW.timestamp()),
        "lastUpdatedAt": int(NOW.timestamp()),
        "versionNumber": 1,
        "executionNumber": 2,
        "jobDocument": {"operation": "reboot"},
    }
    # Field order too: devices parse JSON, but the documents are the same bytes either way.
    assert list(ours[thing][1][1]["execution"]) == list(theirs[thing][1][1]["execution"])


def test_a_release_to_devices_with_pending_work_sends_what_one_at_a_time_sends():
    group = make_group("busy")
    queued_before, running, queued_after, full, _fresh = (
        make_device(f"busy-{name}", group=group)
        for name in ("queued-before", "running", "queued-after", "full", "fresh")
    )
    pending_job("older", queued_before, minutes=-5)  # stays the head: notify only
    start(pending_job("running", running, minutes=-5), NOW - timedelta(minutes=1))
    pending_job("later", queued_after, minutes=5)  # the new one is older: a new head
    for n in range(notifications.LIST_LIMIT):  # a full list: the new one is 11th
        pending_job(f"full-{n}", full, minutes=-20 + n)
    job = make_job("busy-job", groups=[group], now=NOW)

    ours = sent_per_device(lambda: released_by_the_engine(job))
    theirs = sent_per_device(lambda: released_one_at_a_time(job))

    assert ours == theirs
    kinds = {thing: [topic.rsplit("/", 1)[1] for topic, _ in sent] for thing, sent in ours.items()}
    assert kinds == {
        "busy-queued-before": ["notify"],
        "busy-running": ["notify"],
        "busy-queued-after": ["notify", "notify-next"],
        "busy-full": ["notify"],
        "busy-fresh": ["notify", "notify-next"],
    }
    listed = ours["busy-running"][0][1]["jobs"]
    assert [(status, [s["jobId"] for s in summaries]) for status, summaries in listed.items()] == [
        ("IN_PROGRESS", ["running"]),
        ("QUEUED", ["busy-job"]),
    ]
    full_list = ours["busy-full"][0][1]["jobs"]["QUEUED"]
    assert [s["jobId"] for s in full_list] == [f"full-{n}" for n in range(10)]
    assert ours["busy-queued-after"][1][1]["execution"]["jobId"] == "busy-job"


def test_a_firmware_release_signs_each_devices_download_url_for_that_device():
    group = make_group("firmware")
    for n in range(3):
        make_device(f"fw-{n}", group=group)
    version = make_version(file_url="", artifact="firmware/sensor-2.0.0.bin")
    job = make_job("fw-job", groups=[group], firmware=str(version.pk), document=None, now=NOW)

    ours = sent_per_device(lambda: released_by_the_engine(job))
    theirs = sent_per_device(lambda: released_one_at_a_time(job))

    for thing, sent in ours.items():
        document = sent[1][1]["execution"]["jobDocument"]
        assert f"&device={thing}&" in document["firmware"]["url"]
        assert document["afr_ota"]["files"][0]["update_data_url"] == document["firmware"]["url"]
    # The URLs expire a fixed time after they are made: the two runs may be a second apart.
    assert without_expiry(ours) == without_expiry(theirs)


def without_expiry(sent: dict) -> dict:
    text = orjson.dumps(sent).decode()
    return orjson.loads(re.sub(r"expires=\d+&(device=[^&]+&)?signature=\w+", r"\1", text))


def release_queries(job: Job) -> int:
    with CaptureQueriesContext(connection) as queries:
        engine.release(job.pk, NOW, engine.Report())
    return len(queries)


@pytest.mark.parametrize("busy", [False, True], ids=["fresh", "with-pending-work"])
def test_a_release_batch_costs_the_same_queries_for_3_and_30_devices(busy):
    counts = []
    for size in (3, 30):
        group = make_group(f"size-{size}")
        devices = [make_device(f"size-{size}-{n}", group=group) for n in range(size)]
        if busy:
            for device in devices[1:]:
                pending_job(f"before-{device.device_id}", device, minutes=-5)
        counts.append(release_queries(make_job(f"job-{size}", groups=[group], now=NOW)))
        assert OutboxMessage.objects.filter(device_id__startswith=f"size-{size}-").count() == (
            2 * size if not busy else size + 1  # notify-next only where the head changed
        )
    assert counts[0] == counts[1]
