"""A batch committed but not acknowledged (the bridge died in between) is redelivered by the
broker with the DUP flag: every update in it is recognised and applied once, not twice."""

import time

import orjson
import pytest

from devices.choices import DeviceStatus
from fleetportal.bridge.transport import Connection
from shadows.models import Shadow, ShadowHistory
from tests.devices.credential_helpers import credentialed, identity_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UPDATES = 50


def test_batch_redelivered_after_commit_is_applied_once(bridge, broker, device_client, monkeypatch):
    device = credentialed("e2e-dup-1", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))
    bridge.stop()  # its session queues the updates, so they arrive as one batch
    for n in range(1, UPDATES + 1):
        body = {"state": {"reported": {"counter": n}}, "clientToken": f"t-{n}"}
        client.publish("$aws/things/e2e-dup-1/shadow/update", orjson.dumps(body))

    # The bridge dies after its commits and before any ack: here it never acks, then stops.
    monkeypatch.setattr(Connection, "ack", lambda self, message: True)
    bridge.start()
    assert bridge.wait_until(lambda: bridge.device_messages >= UPDATES, timeout=15)
    shadow = Shadow.objects.get(device=device.device, name="")
    assert shadow.version == UPDATES  # committed, none acknowledged
    monkeypatch.undo()

    bridge.restart()  # the broker redelivers all of them, flagged DUP
    assert bridge.wait_until(lambda: bridge.device_messages >= UPDATES, timeout=15)
    time.sleep(0.3)
    shadow.refresh_from_db()
    assert shadow.version == UPDATES
    assert shadow.reported_state == {"counter": UPDATES}
    versions = ShadowHistory.objects.filter(shadow=shadow).values_list("version", flat=True)
    assert sorted(versions) == list(range(1, UPDATES + 1))


def test_batch_whose_commit_reply_was_lost_is_not_applied_twice(
    bridge, broker, device_client, monkeypatch
):
    """The database committed, then the connection died before the bridge heard back (a crash
    or a network cut at COMMIT): the bridge retries the batch, which must not apply it again."""
    from contextlib import contextmanager

    from django.db import OperationalError

    from fleetportal.bridge import runner

    device = credentialed("e2e-lost-commit", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))
    bridge.stop()  # the updates queue in the bridge's session and arrive as one batch
    for n in range(1, UPDATES + 1):
        body = {"state": {"reported": {"counter": n}}, "clientToken": f"l-{n}"}
        client.publish("$aws/things/e2e-lost-commit/shadow/update", orjson.dumps(body))

    coalesced, faults = runner.live.coalesced, [OperationalError("server closed the connection")]

    @contextmanager
    def commit_then_lose_the_reply():
        with coalesced():
            yield  # the batch's transaction commits inside
        if faults:
            raise faults.pop()

    monkeypatch.setattr(runner.live, "coalesced", commit_then_lose_the_reply)
    bridge.start()
    assert bridge.wait_until(lambda: bridge.device_messages >= UPDATES, timeout=20)
    assert not faults  # the fault did hit a committed batch

    shadow = Shadow.objects.get(device=device.device, name="")
    versions = ShadowHistory.objects.filter(shadow=shadow).values_list("version", flat=True)
    assert sorted(versions) == list(range(1, UPDATES + 1))
    assert shadow.reported_state == {"counter": UPDATES}
