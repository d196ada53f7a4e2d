"""Hooks on a shadow's accepted updates (shadows.writes.on_updates): called once per batch with
all its updates, inside its transaction, without taking the bridge's batch off its fast path."""

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from devices.choices import DeviceStatus
from fleetportal.bridge.transport import Received
from shadows import services, writes
from shadows.models import Shadow
from tests.conftest import make_device
from tests.shadows.test_batch import _mids, run_batch, update

pytestmark = pytest.mark.django_db


class Recorder:
    """A hook that notes each call and whether it ran inside the writing transaction."""

    def __init__(self):
        self.calls: list[list[writes.AcceptedUpdate]] = []
        self.in_transaction: list[bool] = []

    def __call__(self, updates):
        self.calls.append(list(updates))
        self.in_transaction.append(connection.in_atomic_block)


@pytest.fixture
def classic_hook(monkeypatch):
    recorder = Recorder()
    monkeypatch.setitem(writes._hooks, services.CLASSIC, [recorder])
    return recorder


def batch_of(device_id: str, size: int, prefix: str) -> list[Received]:
    return [update(device_id, {"firmware_version": f"1.{n}"}, f"{prefix}{n}") for n in range(size)]


def test_a_hook_on_the_classic_shadow_keeps_the_batch_cost_and_sees_every_update_once(
    monkeypatch,
):
    without = make_device("hook-without", status=DeviceStatus.ACTIVE)
    hooked = make_device("hook-with", status=DeviceStatus.ACTIVE)
    for device in (without, hooked):
        services.update(device, "", {"state": {"reported": {}}}, actor="x")
    # No hook at all (apps register theirs on the classic shadow; firmware does).
    monkeypatch.setitem(writes._hooks, services.CLASSIC, [])
    cost_without = run_batch(batch_of("hook-without", 30, "a"))
    recorder = Recorder()
    monkeypatch.setitem(writes._hooks, services.CLASSIC, [recorder])

    cost_with = run_batch(batch_of("hook-with", 30, "b"))

    assert cost_with == cost_without
    assert len(recorder.calls) == 1
    (updates,) = recorder.calls
    assert [u.reported["firmware_version"] for u in updates] == [f"1.{n}" for n in range(30)]
    assert [u.version for u in updates] == list(range(2, 32))
    assert {(u.device_id, u.device_pk, u.name) for u in updates} == {("hook-with", hooked.pk, "")}
    assert updates[0].change == {"reported": {"firmware_version": "1.0"}}
    assert recorder.in_transaction == [True]


def test_a_hook_sees_each_update_with_the_state_right_after_it(classic_hook):
    device = make_device("hook-states", status=DeviceStatus.ACTIVE)
    services.update(device, "", {"state": {"reported": {"a": 1}}}, actor="x")
    classic_hook.calls.clear()

    run_batch([update("hook-states", {"b": 2}, "t1"), update("hook-states", {"a": None}, "t2")])

    (updates,) = classic_hook.calls
    assert [u.reported for u in updates] == [{"a": 1, "b": 2}, {"b": 2}]


def test_a_hook_runs_for_service_updates_too(classic_hook):
    device = make_device("hook-service")

    services.set_desired(device, "", {"mode": "eco"}, actor="operator")

    (updates,) = classic_hook.calls
    assert [(u.desired, u.version, u.change) for u in updates] == [
        ({"mode": "eco"}, 1, {"desired": {"mode": "eco"}})
    ]


def test_a_hook_is_not_called_for_other_shadow_names(classic_hook):
    device = make_device("hook-named")

    services.update(device, "other", {"state": {"reported": {"a": 1}}}, actor="x")

    assert classic_hook.calls == []


def test_a_failing_hook_rolls_its_batch_back(monkeypatch):
    device = make_device("hook-fails", status=DeviceStatus.ACTIVE)
    services.update(device, "", {"state": {"reported": {"n": 0}}}, actor="x")

    def broken(updates):
        raise RuntimeError("hook failed")

    monkeypatch.setitem(writes._hooks, services.CLASSIC, [broken])
    with pytest.raises(RuntimeError):
        services.update(device, "", {"state": {"reported": {"n": 1}}}, actor="x")

    assert Shadow.objects.get(device=device).reported_state == {"n": 0}


def named_update(device_id: str, name: str, reported: dict, token: str) -> Received:
    body = {"state": {"reported": reported}, "clientToken": token}
    return Received(
        topic=f"$aws/things/{device_id}/shadow/name/{name}/update",
        payload=orjson.dumps(body),
        qos=1,
        mid=next(_mids),
        retain=False,
        generation=1,
        received_at=timezone.now(),
    )


def test_config_shadow_reports_take_the_batch_path():
    """The configuration's hook no longer sends `config` updates one by one through the
    service: a batch of 40 costs what a batch of 10 does."""
    costs = {}
    for size in (10, 40):
        device = make_device(f"hook-config-{size}", status=DeviceStatus.ACTIVE)
        services.update(device, "config", {"state": {"reported": {}}}, actor="x")
        costs[size] = run_batch(
            [named_update(device.device_id, "config", {"n": n}, f"c{n}") for n in range(size)]
        )
        assert Shadow.objects.get(device=device, name="config").version == size + 1
    assert costs[40] == costs[10]
