"""Two partitioned `runbridge` processes side by side (architecture.md §3), real Mosquitto.

Each process owns the devices the partition function gives it: it subscribes their explicit
topics, handles their messages in order and publishes their replies. A device certified while
the bridges run is subscribed before it gets its certificate, so its first message is handled.
"""

import threading
import time
from itertools import count

import orjson
import pytest

from devices import credentials
from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal.bridge import coverage
from fleetportal.bridge.partitions import Partition, partition_of
from fleetportal.bridge.transport import Connection
from fleetportal.models import BridgePartition, OutboxMessage
from shadows.models import Shadow, ShadowHistory
from tests.conftest import make_device
from tests.devices.credential_helpers import credentialed, identity_of
from tests.e2e.bridge_process import BridgeProcess, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PARTITIONS = 2
UPDATES = 60


def ids_per_partition(prefix: str, per_partition: int) -> dict[int, list[str]]:
    """Device ids named `prefix-n`, `per_partition` of them in each partition."""
    owned: dict[int, list[str]] = {k: [] for k in range(PARTITIONS)}
    for n in count():
        device_id = f"{prefix}-{n}"
        share = owned[partition_of(device_id, PARTITIONS)]
        if len(share) < per_partition:
            share.append(device_id)
        if all(len(share) == per_partition for share in owned.values()):
            return owned


class Bridges:
    """`runbridge --partition K --partitions 2` for K = 0, 1 (runner and publisher each)."""

    def __init__(self, broker, tmp_path):
        self.processes = [
            BridgeProcess(
                broker,
                tmp_path / f"bridge-p{k}.log",
                *("--partition", str(k), "--partitions", str(PARTITIONS)),
            )
            for k in range(PARTITIONS)
        ]

    def start(self, *partitions: int) -> None:
        """Start these partitions and wait until each subscribed every device there is."""
        since = coverage.database_now()
        for k in partitions:
            self.processes[k].start()
        covered = BridgePartition.objects.filter(
            partition__in=partitions, partitions=PARTITIONS, covered_at__gt=since
        )
        assert wait_until(lambda: covered.count() == len(partitions), 30), self.logs()

    def stop(self, *partitions: int) -> None:
        for k in partitions:
            self.processes[k].stop()

    def logs(self) -> str:
        return "\n".join(p.log()[-3000:] for p in self.processes)


@pytest.fixture
def bridges(broker, tmp_path):
    bridges = Bridges(broker, tmp_path)
    yield bridges
    bridges.stop(*range(PARTITIONS))
    for k in range(PARTITIONS):
        # Drop each partition's persistent session so nothing queues for it after the test.
        session = Connection(Partition(k, PARTITIONS).runner_client_id, clean_session=True)
        session.connect(timeout=5)
        session.close()


class ShadowDevice:
    """A connected device that publishes numbered updates and collects update/accepted."""

    def __init__(self, broker, device_client, device_id: str):
        self.device_id = device_id
        self.topic = f"$aws/things/{device_id}/shadow/update"
        self.client = device_client(identity_of(broker, credentialed(device_id)))
        self.client.subscribe(self.topic + "/accepted")

    def publish_updates(self, first: int, last: int) -> list[int]:
        """Publish updates first..last pipelined (QoS 1); the numbers the broker PUBACKed."""
        infos = []
        for n in range(first, last + 1):
            body = {"state": {"reported": {"counter": n}}, "clientToken": f"t-{n}"}
            infos.append((n, self.client.client.publish(self.topic, orjson.dumps(body), qos=1)))
        for _, info in infos:
            info.wait_for_publish(30)
        return [n for n, info in infos if info.is_published()]

    def accepted(self, expected: int, timeout: float) -> list[tuple[str, int]]:
        """(clientToken, version) of the next `expected` update/accepted replies, in order."""
        return [
            (reply["clientToken"], reply["version"])
            for reply in (
                orjson.loads(self.client.expect(self.topic + "/accepted", timeout).payload)
                for _ in range(expected)
            )
        ]


def version_of(device_id: str) -> int:
    row = Shadow.objects.filter(device__device_id=device_id, name="").first()
    return row.version if row else 0


def history_of(device_id: str) -> list[tuple[int, str]]:
    return list(
        ShadowHistory.objects.filter(shadow__device__device_id=device_id, shadow__name="")
        .order_by("version")
        .values_list("version", "client_token")
    )


def test_each_partition_applies_only_its_own_devices_updates_once_and_in_order(
    broker, device_client, bridges
):
    owned = ids_per_partition("part", 3)
    devices = {k: [ShadowDevice(broker, device_client, d) for d in ids] for k, ids in owned.items()}
    bridges.start(0, 1)
    bridges.stop(1)  # partition 1's session keeps its subscriptions and queues for it

    published: dict[str, list[int]] = {}

    def publish(device: ShadowDevice) -> None:
        published[device.device_id] = device.publish_updates(1, UPDATES)

    everyone = [device for share in devices.values() for device in share]
    threads = [threading.Thread(target=publish, args=(device,)) for device in everyone]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(published[d.device_id] == list(range(1, UPDATES + 1)) for d in everyone)

    # Partition 0 handles its devices and nothing of partition 1's.
    assert wait_until(lambda: all(version_of(d.device_id) == UPDATES for d in devices[0]), 60), (
        bridges.logs()
    )
    time.sleep(0.5)
    assert [version_of(d.device_id) for d in devices[1]] == [0, 0, 0]

    # Partition 1 comes back and handles what queued for it in its own session.
    bridges.start(1)
    assert wait_until(lambda: all(version_of(d.device_id) == UPDATES for d in devices[1]), 60), (
        bridges.logs()
    )
    time.sleep(0.5)  # a duplicate would show up as an extra version by now

    expected = [(n, f"t-{n}") for n in range(1, UPDATES + 1)]
    for device in everyone:
        assert history_of(device.device_id) == expected, device.device_id
        replies = device.accepted(UPDATES, timeout=30)
        assert replies == [(f"t-{n}", n) for n in range(1, UPDATES + 1)], device.device_id
    assert wait_until(lambda: not OutboxMessage.objects.exists(), 10)


def test_a_device_certified_while_the_bridges_run_has_its_first_message_handled(
    broker, device_client, bridges
):
    make_device("existing-0")
    bridges.start(0, 1)
    for device_id in [d for ids in ids_per_partition("fresh", 3).values() for d in ids]:
        # Registration NOTIFYs the bridges; issuance returns once the owner subscribed.
        started = time.monotonic()
        device = ShadowDevice(broker, device_client, device_id)
        assert time.monotonic() - started < coverage.WAIT_SECONDS / 2  # covered, not timed out
        assert device.publish_updates(1, 1) == [1]
        assert device.accepted(1, timeout=10) == [("t-1", 1)], bridges.logs()
        assert history_of(device_id) == [(1, "t-1")]


def test_issuance_waits_for_the_partition_that_owns_the_device(broker, bridges):
    owned = ids_per_partition("waiting", 1)
    bridges.start(0, 1)
    bridges.stop(1)
    for device_id in (owned[0][0], owned[1][0]):
        make_device(device_id)

    # Partition 0 subscribes its new device at once; partition 1's cannot be subscribed yet.
    assert coverage.wait_until_covered([owned[0][0]], timeout=10)
    started = time.monotonic()
    assert not coverage.wait_until_covered([owned[1][0]], timeout=1.0)
    assert time.monotonic() - started >= 1.0

    bridges.start(1)
    started = time.monotonic()
    credential, _ = credentials.issue_credential(
        Device.objects.get(device_id=owned[1][0]), actor="system"
    )
    assert time.monotonic() - started < coverage.WAIT_SECONDS / 2  # covered, not timed out
    assert credential.device.status == DeviceStatus.PROVISIONING
