"""The group service (devices.groups) through the admin and the REST API: the same rules with
the same words, static membership, and the membership hook from both."""

import json

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError
from django.urls import reverse

from devices import groups, hooks
from devices.choices import DeviceStatus
from devices.exceptions import DeviceDecommissioned
from devices.models import ASSIGNED_MEMBERS, DYNAMIC_GROUP_MEMBERS, Device, DeviceGroup
from tests.conftest import make_device, make_group
from tests.devices.test_admin import change_url, device_form, logged_in

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/groups/"
CAMERAS = {"field": "device_type", "op": "eq", "value": "camera"}


def members_url(group) -> str:
    return f"{GROUPS}{group.pk}/members/"


def group_change_url(group) -> str:
    return reverse("admin:devices_devicegroup_change", args=[group.pk])


def group_form(group, **fields) -> dict:
    return {"name": group.name, "description": "", "filters": "{}", "priority": "0", **fields}


class Recorder(list):
    def __call__(self, event):
        self.append(event)


# -- one rule, one message ------------------------------------------------------------------


def test_admin_and_api_refuse_a_filter_on_an_assigned_group_with_the_same_words(
    client, operator, operator_api
):
    group = make_group("north")
    make_device(group=group)

    api = operator_api.patch(f"{GROUPS}{group.pk}/", {"filters": CAMERAS}, format="json")
    admin = logged_in(client, operator).post(
        group_change_url(group), group_form(group, filters=json.dumps(CAMERAS))
    )

    assert api.status_code == 400
    assert admin.status_code == 200
    assert api.json()["filters"] == [ASSIGNED_MEMBERS]
    assert admin.context["adminform"].form.errors["filters"] == [ASSIGNED_MEMBERS]
    assert DeviceGroup.objects.get(pk=group.pk).filters == {}


def test_the_service_refuses_it_too():
    group = make_group("north")
    make_device(group=group)
    with pytest.raises(ValidationError) as refused:
        groups.update_group(group, {"filters": CAMERAS}, actor="otto")
    assert refused.value.message_dict == {"filters": [ASSIGNED_MEMBERS]}


def test_admin_shows_a_bad_filter_on_a_configured_group_as_a_form_error(client, fleet_admin):
    group = make_group("north")
    response = logged_in(client, fleet_admin).post(
        group_change_url(group), group_form(group, filters='{"device_type": "camera"}')
    )
    assert response.status_code == 200  # was a 500: the page ran the refused filter
    assert "unknown key(s) 'device_type'" in response.context["adminform"].form.errors["filters"][0]


# -- create, change, delete through the admin and the API -------------------------------------


def test_api_group_changes_fire_the_group_hooks_with_the_token_actor(operator_api):
    saved, deleted = Recorder(), Recorder()
    with hooks.subscribed(hooks.GroupSaved, saved), hooks.subscribed(hooks.GroupDeleted, deleted):
        created = operator_api.post(GROUPS, {"name": "north"}, format="json").json()
        operator_api.patch(f"{GROUPS}{created['id']}/", {"priority": 3}, format="json")
        operator_api.delete(f"{GROUPS}{created['id']}/")
    assert [(e.created, e.changed, e.actor) for e in saved] == [
        (True, ("name",), "token:otto"),
        (False, ("priority",), "token:otto"),
    ]
    assert [e.group.name for e in deleted] == ["north"]
    assert not DeviceGroup.objects.exists()
    # The admin's history still records each change.
    assert LogEntry.objects.count() == 3


def test_admin_group_changes_fire_the_group_hooks(client, operator):
    group = make_group("north")
    saved, deleted = Recorder(), Recorder()
    admin = logged_in(client, operator)
    with hooks.subscribed(hooks.GroupSaved, saved), hooks.subscribed(hooks.GroupDeleted, deleted):
        changed = admin.post(group_change_url(group), group_form(group, priority="5"))
        deleted_page = admin.post(
            reverse("admin:devices_devicegroup_delete", args=[group.pk]), {"post": "yes"}
        )
    assert (changed.status_code, deleted_page.status_code) == (302, 302)
    assert [(e.created, e.changed, e.actor) for e in saved] == [(False, ("priority",), "otto")]
    assert [e.group.name for e in deleted] == ["north"]
    assert not DeviceGroup.objects.exists()


def test_admin_bulk_delete_goes_through_the_service(client, fleet_admin):
    pks = [str(make_group(name).pk) for name in ("a", "b")]
    deleted = Recorder()
    with hooks.subscribed(hooks.GroupDeleted, deleted):
        response = logged_in(client, fleet_admin).post(
            reverse("admin:devices_devicegroup_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": pks,
                "post": "yes",
            },
        )
    assert response.status_code == 302
    assert sorted(e.group.name for e in deleted) == ["a", "b"]
    assert not DeviceGroup.objects.exists()


# -- static membership ------------------------------------------------------------------------


def test_admin_moving_a_device_fires_the_membership_hook(client, fleet_admin):
    north, south = make_group("north"), make_group("south")
    device = make_device("valve-9", device_type="valve", group=north)
    changes = Recorder()
    with hooks.subscribed(hooks.GroupMembershipChanged, changes):
        response = logged_in(client, fleet_admin).post(
            change_url(device), device_form(group=str(south.pk))
        )
    assert response.status_code == 302
    assert [(e.group.name, len(e.added), len(e.removed), e.actor) for e in changes] == [
        ("north", 0, 1, "ada"),
        ("south", 1, 0, "ada"),
    ]


def test_api_moving_a_device_fires_the_membership_hook(admin_api):
    south = make_group("south")
    make_device("d1")
    changes = Recorder()
    with hooks.subscribed(hooks.GroupMembershipChanged, changes):
        response = admin_api.patch("/api/v1/devices/d1/", {"group": "south"}, format="json")
    assert response.status_code == 200
    assert [(e.group, [d.device_id for d in e.added], e.actor) for e in changes] == [
        (south, ["d1"], "token:ada")
    ]


def test_api_adds_and_removes_members_in_one_request(admin_api):
    north, south = make_group("north"), make_group("south")
    make_device("a", group=north), make_device("b"), make_device("c", group=south)
    changes = Recorder()
    with hooks.subscribed(hooks.GroupMembershipChanged, changes):
        response = admin_api.post(
            members_url(south), {"add": ["a", "b"], "remove": ["c"]}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert response.json() == {"added": 2, "removed": 1}
    assert dict(Device.objects.values_list("device_id", "group__name")) == {
        "a": "south",
        "b": "south",
        "c": None,
    }
    summary = [
        (e.group.name, sorted(d.device_id for d in e.added), [d.device_id for d in e.removed])
        for e in changes
    ]
    assert summary == [("north", [], ["a"]), ("south", ["a", "b"], []), ("south", [], ["c"])]
    # Each moved device's timeline says so, as an edit of its group field would.
    event = Device.objects.get(device_id="a").events.get(event_type="updated")
    assert (event.event_data, event.actor) == (
        {"changes": {"group": ["north", "south"]}},
        "token:ada",
    )


def test_api_refuses_members_for_a_dynamic_group(admin_api):
    cameras = make_group("cameras", filters=CAMERAS)
    make_device("d1")
    response = admin_api.post(members_url(cameras), {"add": ["d1"]}, format="json")
    assert response.status_code == 400
    assert response.json()["group"] == [DYNAMIC_GROUP_MEMBERS]
    assert Device.objects.get(device_id="d1").group is None


def test_api_refuses_an_unknown_or_repeated_device(admin_api):
    group = make_group("north")
    make_device("d1")
    unknown = admin_api.post(members_url(group), {"add": ["nope"]}, format="json")
    both = admin_api.post(members_url(group), {"add": ["d1"], "remove": ["d1"]}, format="json")
    assert unknown.status_code == both.status_code == 400
    assert unknown.json()["add"] == ["No device has the device_id nope."]
    assert both.json()["remove"] == ["Both added and removed: d1."]


def test_api_refuses_to_assign_a_decommissioned_device(admin_api):
    group = make_group("north")
    make_device("old", status=DeviceStatus.DECOMMISSIONED)
    response = admin_api.post(members_url(group), {"add": ["old"]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "decommissioned"
    assert Device.objects.get(device_id="old").group is None


def test_a_viewer_cannot_change_members(viewer_api):
    group = make_group("north")
    make_device("d1")
    response = viewer_api.post(members_url(group), {"add": ["d1"]}, format="json")
    assert response.status_code == 403


def test_assigning_devices_already_there_moves_nothing():
    group = make_group("north")
    device = make_device("d1", group=group)
    changes = Recorder()
    with hooks.subscribed(hooks.GroupMembershipChanged, changes):
        assert groups.assign_devices([device], group, actor="otto") == 0
    assert changes == []


def test_the_service_refuses_a_decommissioned_device():
    group = make_group("north")
    device = make_device("old", status=DeviceStatus.DECOMMISSIONED)
    with pytest.raises(DeviceDecommissioned):
        groups.assign_devices([device], group, actor="otto")
