"""Shadow updates handled as one bridge batch (shadows/batch.py) on the real database: the same
results as one by one, with a number of queries that does not grow with the batch."""

import itertools

import orjson
import pytest
from django.utils import timezone

from devices.choices import DeviceStatus
from fleetportal.bridge.runner import Runner
from fleetportal.bridge.transport import Received
from fleetportal.models import OutboxMessage
from shadows import services
from shadows.models import Shadow, ShadowHistory
from tests.conftest import make_device
from tests.sql import statements

pytestmark = pytest.mark.django_db

_mids = itertools.count(1)


class Acks:
    """The broker side of the bridge's connection: records what the runner acknowledged."""

    def __init__(self):
        self.acked: list[int] = []

    def ack(self, received: Received) -> bool:
        self.acked.append(received.mid)
        return True


def update(device_id: str, reported: dict, token: str) -> Received:
    body = {"state": {"reported": reported}, "clientToken": token}
    return Received(
        topic=f"$aws/things/{device_id}/shadow/update",
        payload=orjson.dumps(body),
        qos=1,
        mid=next(_mids),
        retain=False,
        generation=1,
        received_at=timezone.now(),
    )


def run_batch(batch: list[Received]) -> int:
    """Process `batch` as the bridge does; the number of statements sent to PostgreSQL.

    The outbox is emptied first, so `replies` shows this batch's replies only."""
    OutboxMessage.objects.all().delete()
    runner = Runner(Acks())
    with statements() as sent:
        runner.process_batch(batch)
    assert runner.connection.acked == [received.mid for received in batch]
    return len(sent)


def replies(device_id: str, reply: str) -> list[dict]:
    topic = f"$aws/things/{device_id}/shadow/update/{reply}"
    rows = OutboxMessage.objects.filter(topic=topic).order_by("id")
    return [orjson.loads(row.payload) for row in rows]


@pytest.mark.parametrize("first_exists", [True, False])
def test_a_batch_costs_the_same_queries_for_10_updates_as_for_60(first_exists):
    """With or without the shadow existing first (the first update then creates it through
    the service, and the rest of the batch must not all take that slower path)."""
    counts = {}
    for size in (10, 60):
        device = make_device(f"batch-q-{first_exists}-{size}", status=DeviceStatus.ACTIVE)
        if first_exists:
            services.update(device, "", {"state": {"reported": {"n": 0}}}, actor="x")
        counts[size] = run_batch(
            [update(device.device_id, {"n": n}, f"t{n}") for n in range(1, size + 1)]
        )
        shadow = Shadow.objects.get(device=device, name="")
        assert shadow.reported_state == {"n": size}
        offset = 1 if first_exists else 0
        assert shadow.version == size + offset
        versions = ShadowHistory.objects.filter(shadow=shadow).values_list("version", flat=True)
        assert sorted(versions) == list(range(1, size + offset + 1))
        accepted = replies(device.device_id, "accepted")
        assert [a["clientToken"] for a in accepted] == [f"t{n}" for n in range(1, size + 1)]
        assert [a["version"] for a in accepted] == list(range(1 + offset, size + offset + 1))
    assert counts[60] == counts[10]


def test_updates_of_many_devices_interleaved_keep_each_devices_order():
    devices = [make_device(f"batch-many-{k}", status=DeviceStatus.ACTIVE) for k in range(5)]
    for device in devices[:3]:  # two of them have no shadow yet
        services.update(device, "", {"state": {"reported": {"n": 0}}}, actor="x")
    batch = [
        update(d.device_id, {"n": n}, f"{d.device_id}-{n}") for n in range(1, 9) for d in devices
    ]

    run_batch(batch)

    for device in devices:
        accepted = replies(device.device_id, "accepted")
        assert [a["state"]["reported"]["n"] for a in accepted] == list(range(1, 9))
        assert Shadow.objects.get(device=device).reported_state == {"n": 8}


def test_reply_payloads_are_stored_exactly_as_serialised():
    # Text that a database JSON type could re-space, re-escape or reorder.
    reported = {"zeta": 1, "alpha": 'é \u00e9 😀 "q" \\ \u2028', "nested": {"b": [1.5, {"a": "x"}]}}
    device = make_device("batch-bytes", status=DeviceStatus.ACTIVE)
    services.update(device, "", {"state": {"reported": {}}}, actor="x")

    run_batch([update("batch-bytes", reported, "tok")])

    row = OutboxMessage.objects.get(topic="$aws/things/batch-bytes/shadow/update/accepted")
    payload = bytes(row.payload)
    document = orjson.loads(payload)
    assert document["state"]["reported"] == reported
    assert payload == orjson.dumps(document)  # compact, key order kept: as orjson wrote it
    assert list(document["state"]["reported"]) == ["zeta", "alpha", "nested"]


def test_a_decommissioned_device_in_a_batch_is_refused_and_the_others_applied():
    active = make_device("batch-ok", status=DeviceStatus.ACTIVE)
    gone = make_device("batch-gone", status=DeviceStatus.ACTIVE)
    for device in (active, gone):
        services.update(device, "", {"state": {"reported": {"n": 0}}}, actor="x")
    gone.__class__.objects.filter(pk=gone.pk).update(status=DeviceStatus.DECOMMISSIONED)

    run_batch([update("batch-gone", {"n": 1}, "g1"), update("batch-ok", {"n": 1}, "o1")])

    assert Shadow.objects.get(device=gone).version == 1
    assert Shadow.objects.get(device=active).version == 2
    rejected = replies("batch-gone", "rejected")
    assert [r["clientToken"] for r in rejected] == ["g1"]
