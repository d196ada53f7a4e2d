"""The bridge against a real Mosquitto and PostgreSQL: ack after commit, and the outbox."""

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, transaction

from devices.models import DeviceGroup
from fleetportal import outbox
from fleetportal.bridge import record, router
from fleetportal.models import OutboxMessage
from tests.mqtt.clients import make_identity

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

KIND = "device:test/group"
_names = itertools.count(1)


class Crash(BaseException):
    """Stands for the bridge process dying mid-transaction (not an error it would handle)."""


class GroupHandler:
    """Creates the group named by the payload; `failures` are raised first, one per call."""

    def __init__(self):
        self.failures: list[BaseException] = []
        self.calls = 0

    def __call__(self, message: router.InboundMessage) -> None:
        self.calls += 1
        DeviceGroup.objects.create(name=message.payload.decode())
        if self.failures:
            raise self.failures.pop(0)


@pytest.fixture
def handler():
    handler = GroupHandler()
    router.register(KIND, handler, "devices/+/test/group")
    yield handler
    router.unregister(KIND)


def group_exists(name: str) -> bool:
    return DeviceGroup.objects.filter(name=name).exists()


def test_inbound_message_is_handled_and_committed(handler, bridge, broker, device_client):
    device = device_client(make_identity(broker, "bridge-dev-1"))

    device.publish("devices/bridge-dev-1/test/group", b"from-device")

    assert bridge.wait_until(lambda: group_exists("from-device"))


def test_message_whose_transaction_did_not_commit_is_redelivered(
    handler, bridge, broker, device_client
):
    handler.failures.append(Crash())
    device = device_client(make_identity(broker, "bridge-dev-2"))

    device.publish("devices/bridge-dev-2/test/group", b"after-crash")
    assert bridge.wait_until(lambda: bridge.crashed)
    assert not group_exists("after-crash")  # rolled back, and not acked
    bridge.restart()

    assert bridge.wait_until(lambda: group_exists("after-crash"))
    assert handler.calls == 2


def test_database_error_is_retried_not_acked(handler, bridge, broker, device_client):
    handler.failures.append(OperationalError("server closed the connection unexpectedly"))
    device = device_client(make_identity(broker, "bridge-dev-3"))

    device.publish("devices/bridge-dev-3/test/group", b"retried")

    assert bridge.wait_until(lambda: group_exists("retried"))
    bridge.restart()  # acked after the commit: no redelivery now
    device.publish("devices/bridge-dev-3/test/group", b"next")
    assert bridge.wait_until(lambda: group_exists("next"))
    assert handler.calls == 3


def test_handler_bug_is_acked_and_does_not_block_the_next_message(
    handler, bridge, broker, device_client
):
    handler.failures.append(ValueError("a bug"))
    device = device_client(make_identity(broker, "bridge-dev-4"))

    device.publish("devices/bridge-dev-4/test/group", b"poison")
    device.publish("devices/bridge-dev-4/test/group", b"healthy")

    assert bridge.wait_until(lambda: group_exists("healthy"))
    assert not group_exists("poison")
    bridge.restart()
    assert not bridge.wait_until(lambda: handler.calls > 2, timeout=0.5)


def test_outbox_message_reaches_the_device(bridge, broker, device_client):
    device = device_client(make_identity(broker, "out-dev-1"))
    device.subscribe("devices/out-dev-1/commands")

    with transaction.atomic():
        outbox.send("devices/out-dev-1/commands", {"n": 1}, device_id="out-dev-1")

    assert device.expect("devices/out-dev-1/commands").payload == b'{"n":1}'
    assert bridge.wait_until(lambda: not OutboxMessage.objects.exists())


def test_outbox_rows_written_while_the_broker_is_down_go_out_in_order_when_it_returns(
    bridge, broker, device_client
):
    # A persistent session, as devices keep: the subscription survives the broker's restart.
    device = device_client(make_identity(broker, "out-dev-2"), clean_session=False)
    device.subscribe("devices/out-dev-2/commands")

    with broker.stopped():
        for n in range(3):
            with transaction.atomic():
                outbox.send("devices/out-dev-2/commands", {"n": n}, device_id="out-dev-2")
        assert OutboxMessage.objects.count() == 3

    received = [device.expect("devices/out-dev-2/commands", timeout=15).payload for _ in range(3)]
    assert received == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert bridge.wait_until(lambda: not OutboxMessage.objects.exists())


def test_rolled_back_outbox_row_is_never_sent(bridge, broker, device_client):
    device = device_client(make_identity(broker, "out-dev-3"))
    device.subscribe("devices/out-dev-3/commands")

    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.send("devices/out-dev-3/commands", {"n": "lost"}, device_id="out-dev-3")
        raise RuntimeError
    with transaction.atomic():
        outbox.send("devices/out-dev-3/commands", {"n": "kept"}, device_id="out-dev-3")

    assert device.expect("devices/out-dev-3/commands").payload == b'{"n":"kept"}'
    device.expect_nothing(0.3)


def test_message_nobody_serves_any_more_is_acked_and_dropped(bridge, broker, device_client):
    device = device_client(make_identity(broker, "bridge-dev-5"))
    router.register("device:test/retired", lambda message: None, "devices/+/test/retired")
    try:
        bridge.restart()  # subscribes to the filter, which then loses its handler
    finally:
        router.unregister("device:test/retired")
    device.publish("devices/bridge-dev-5/test/retired", b"x")

    assert bridge.wait_until(lambda: bridge.device_messages == 1)
    bridge.restart()
    assert not bridge.wait_until(lambda: bridge.device_messages > 0, timeout=0.5)


def test_queued_messages_are_batched_and_a_bad_one_rolls_back_alone(
    handler, bridge, broker, device_client
):
    device = device_client(make_identity(broker, "bridge-dev-6"))
    bridge.stop()  # its session queues them: they arrive together and go in one transaction
    for n in range(30):
        device.publish("devices/bridge-dev-6/test/group", f"batch-{n}".encode())
    handler.failures.append(ValueError("a bug"))  # the first one handled

    bridge.start()

    assert bridge.wait_until(lambda: group_exists("batch-29"))
    assert not group_exists("batch-0")
    assert DeviceGroup.objects.filter(name__startswith="batch-").count() == 29
    assert bridge.runner.batches >= 1
    bridge.restart()  # all acked after the commit: nothing comes back
    assert not bridge.wait_until(lambda: handler.calls > 30, timeout=0.5)


@pytest.fixture
def slow_batch():
    """A handler that holds its batch until the test lets it go, as a backlog holds a bridge."""
    gate = threading.Event()
    router.register("device:test/slow", lambda message: gate.wait(10), "devices/+/test/slow")
    yield gate
    gate.set()
    router.unregister("device:test/slow")


def test_the_bridge_says_how_far_behind_its_record_of_messages_runs(
    slow_batch, bridge, broker, device_client
):
    """The rollout health check allows for it (fleetportal.bridge.record): a device is not
    silent while its messages wait in the bridge."""
    caught_up = lambda: (lag := record.lag()) is not None and lag < timedelta(seconds=1)  # noqa: E731
    assert bridge.wait_until(caught_up)
    device = device_client(make_identity(broker, "record-dev"))

    device.publish("devices/record-dev/test/slow", b"held")
    time.sleep(3)
    assert record.lag() >= timedelta(seconds=2.5)  # the held message and all behind it

    slow_batch.set()
    assert bridge.wait_until(caught_up)
    bridge.stop()
    assert record.lag() is None  # a stopped bridge holds nobody back
