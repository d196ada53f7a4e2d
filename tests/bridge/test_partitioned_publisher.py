"""Each partition's outbox publisher sends only its devices' rows, in id order."""

import pytest

from fleetportal import outbox
from fleetportal.bridge.partitions import Partition, partition_of
from fleetportal.bridge.publisher import Publisher
from fleetportal.models import OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class Acked:
    def wait(self, timeout: float) -> bool:
        return True


class RecordingConnection:
    """The transport wrapper, stubbed: every publish is acknowledged at once."""

    def __init__(self):
        self.published: list[str] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> Acked:
        self.published.append(topic)
        return Acked()


def test_each_publisher_claims_only_its_partition_and_keeps_per_device_order():
    devices = [f"pub-{n}" for n in range(12)]
    for round_ in range(3):
        for device_id in devices:
            outbox.send(f"devices/{device_id}/m/{round_}", b"{}", device_id=device_id)
    outbox.send("$aws/certificates/create-from-csr/json/accepted", b"{}")  # names no device

    sent = {}
    for index in (1, 0):  # partition 1 first: it must leave partition 0's rows alone
        connection = RecordingConnection()
        publisher = Publisher(connection, partition=Partition(index, 2))
        while publisher.publish_pending():
            pass
        publisher._close_db()
        sent[index] = connection.published

    assert not OutboxMessage.objects.exists()
    for index, topics in sent.items():
        owners = {topic.split("/")[1] for topic in topics if topic.startswith("devices/")}
        assert owners == {d for d in devices if partition_of(d, 2) == index}
        for device_id in owners:
            mine = [t for t in topics if t.startswith(f"devices/{device_id}/")]
            assert mine == [f"devices/{device_id}/m/{r}" for r in range(3)]
    assert "$aws/certificates/create-from-csr/json/accepted" in sent[0]
