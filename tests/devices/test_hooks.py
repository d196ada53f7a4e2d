"""Registry hooks (devices.hooks): what a subscribing app receives, and when."""

import pytest

from devices import groups, hooks, services
from devices.choices import DeviceStatus
from devices.models import Device, DeviceEvent, DeviceGroup
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db


class Recorder:
    """A hook that keeps every event it receives."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)


def fail(event):
    raise RuntimeError("hook failed")


def test_a_transition_hook_receives_from_to_actor_and_reason():
    device = make_device("d1")
    recorder = Recorder()
    with hooks.subscribed(hooks.DevicesTransitioned, recorder):
        services.transition_device(
            device, DeviceStatus.PROVISIONING, actor="otto", reason="on the bench"
        )
    (event,) = recorder.events
    assert [(m.device.device_id, m.from_status) for m in event.moves] == [("d1", "registered")]
    assert (event.to_status, event.actor, event.reason) == ("provisioning", "otto", "on the bench")


def test_a_bulk_transition_is_one_event_with_each_devices_own_from_status():
    registered = make_device("r1")
    active = make_device("a1", status=DeviceStatus.ACTIVE)
    gone = make_device("x1", status=DeviceStatus.DECOMMISSIONED)
    recorder = Recorder()
    with hooks.subscribed(hooks.DevicesTransitioned, recorder):
        services.transition_devices(
            [registered, active, gone], DeviceStatus.DECOMMISSIONED, actor="ada"
        )
    (event,) = recorder.events
    moves = sorted((m.device.device_id, m.from_status) for m in event.moves)
    assert moves == [("a1", "active"), ("r1", "registered")]  # x1 was refused, not moved


def test_a_failing_transition_hook_undoes_the_transition():
    device = make_device("d1")
    with hooks.subscribed(hooks.DevicesTransitioned, fail), pytest.raises(RuntimeError):
        services.transition_device(device, DeviceStatus.PROVISIONING, actor="otto")
    device.refresh_from_db()
    assert device.status == DeviceStatus.REGISTERED
    assert not device.events.filter(event_type="status_changed").exists()


def test_a_registration_hook_sees_the_new_devices_and_their_actor():
    recorder = Recorder()
    with hooks.subscribed(hooks.DevicesRegistered, recorder):
        services.register_devices(
            [{"device_id": "n1", "device_type": "meter"}, {"device_id": "n2", "device_type": "x"}],
            actor="importer",
        )
    (event,) = recorder.events
    assert sorted(d.device_id for d in event.devices) == ["n1", "n2"]
    assert event.actor == "importer"
    # Inside the transaction, after the rows: a hook may query them.
    assert all(d.pk and d.status == DeviceStatus.REGISTERED for d in event.devices)


def test_a_failing_registration_hook_registers_nothing():
    with hooks.subscribed(hooks.DevicesRegistered, fail), pytest.raises(RuntimeError):
        services.register_device({"device_id": "n1", "device_type": "meter"}, actor="otto")
    assert not Device.objects.exists()
    assert not DeviceEvent.objects.exists()


def test_group_hooks_see_create_update_and_delete():
    saved, deleted = Recorder(), Recorder()
    with hooks.subscribed(hooks.GroupSaved, saved), hooks.subscribed(hooks.GroupDeleted, deleted):
        group = groups.create_group({"name": "north"}, actor="otto")
        groups.update_group(group, {"name": "north", "priority": 4}, actor="ada")
        groups.update_group(group, {"priority": 4}, actor="ada")  # no change, no event
        groups.delete_group(group, actor="ada")
    assert [(e.group.name, e.created, e.changed, e.actor) for e in saved.events] == [
        ("north", True, ("name",), "otto"),
        ("north", False, ("priority",), "ada"),
    ]
    (event,) = deleted.events
    assert (event.group.name, event.actor) == ("north", "ada")


def test_a_group_deleted_hook_runs_while_the_group_still_exists():
    group = make_group("north")
    seen = []

    def look(event):
        seen.append(DeviceGroup.objects.filter(pk=event.group.pk).exists())

    with hooks.subscribed(hooks.GroupDeleted, look):
        groups.delete_group(group, actor="ada")
    assert seen == [True]
    assert not DeviceGroup.objects.exists()


def test_a_failing_group_hook_keeps_the_group_as_it_was():
    group = make_group("north")
    with hooks.subscribed(hooks.GroupSaved, fail), pytest.raises(RuntimeError):
        groups.update_group(group, {"description": "new"}, actor="ada")
    with hooks.subscribed(hooks.GroupDeleted, fail), pytest.raises(RuntimeError):
        groups.delete_group(group, actor="ada")
    group.refresh_from_db()
    assert group.description == ""


def test_moving_a_device_tells_the_group_it_left_and_the_one_it_joined():
    north, south = make_group("north"), make_group("south")
    device = make_device("d1", group=north)
    recorder = Recorder()
    with hooks.subscribed(hooks.GroupMembershipChanged, recorder):
        services.update_device(device, {"group": south}, actor="otto")
    assert [
        (e.group.name, [d.device_id for d in e.added], [d.device_id for d in e.removed], e.actor)
        for e in recorder.events
    ] == [("north", [], ["d1"], "otto"), ("south", ["d1"], [], "otto")]


def test_an_update_that_leaves_the_group_alone_fires_no_membership_hook():
    device = make_device("d1", group=make_group("north"))
    recorder = Recorder()
    with hooks.subscribed(hooks.GroupMembershipChanged, recorder):
        services.update_device(device, {"group": device.group, "device_name": "x"}, actor="o")
    assert recorder.events == []


def test_subscribing_twice_runs_the_hook_once():
    recorder = Recorder()
    hooks.subscribe(hooks.GroupSaved, recorder)
    try:
        hooks.subscribe(hooks.GroupSaved, recorder)
        groups.create_group({"name": "north"}, actor="otto")
    finally:
        hooks.unsubscribe(hooks.GroupSaved, recorder)
    assert len(recorder.events) == 1


def test_subscribing_to_something_that_is_not_an_event_is_refused():
    with pytest.raises(TypeError):
        hooks.subscribe(Device, Recorder())
