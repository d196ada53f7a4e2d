"""The operators' admin: lists, filters, search, device page, lifecycle actions and roles."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices import admin as device_admin
from devices.choices import DeviceStatus, EventType
from devices.models import Device, DeviceEvent, DeviceGroup
from fleetportal.paginators import EstimatedCountPaginator
from tests.conftest import make_device, make_group

DEVICES = reverse("admin:devices_device_changelist")
GROUPS = reverse("admin:devices_devicegroup_changelist")
EVENTS = reverse("admin:devices_deviceevent_changelist")
ADD_DEVICE = reverse("admin:devices_device_add")

# Session, user, permissions, the paginator's count, the page, the filters' value lists.
LIST_QUERIES = 10

pytestmark = pytest.mark.django_db


def change_url(device: Device) -> str:
    return reverse("admin:devices_device_change", args=[device.pk])


def transition_url(device: Device) -> str:
    return reverse("admin:devices_device_transition", args=[device.pk])


def logged_in(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def run_action(client, action: str, devices: list[Device], reason: str = ""):
    data = {
        "action": action,
        "_selected_action": [str(d.pk) for d in devices],
        "index": 0,
        "reason": reason,
    }
    return client.post(DEVICES, data, follow=True)


def status_of(device: Device) -> str:
    device.refresh_from_db()
    return device.status


def fleet(n: int, group: DeviceGroup | None = None) -> list[Device]:
    return [make_device(group=group, firmware_version="2.0.1") for _ in range(n)]


@pytest.fixture(params=["operator", "viewer"])
def staff(request):
    """Each read-only page is checked as a Fleet operator and as a Fleet viewer."""
    return request.getfixturevalue(request.param)


# -- device list ---------------------------------------------------------------------------


def test_staff_see_device_list_with_groups(client, staff, django_assert_max_num_queries):
    group = make_group("building-a")
    make_device("meter-1", group=group, device_name="Basement meter")
    logged_in(client, staff)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(DEVICES)
    assert response.status_code == 200
    assert "meter-1" in response.text
    assert "Basement meter" in response.text
    assert "building-a" in response.text


def count_queries(client, url: str) -> int:
    client.get(url)  # the first request of a session may load caches once
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url", [DEVICES, DEVICES + "?status__exact=active&online=no", DEVICES + "?q=dev"]
)
def test_device_list_queries_do_not_grow_with_the_fleet(client, operator, url):
    groups = [make_group(f"group-{i}") for i in range(3)]
    for group in groups:
        fleet(2, group)
    logged_in(client, operator)
    few = count_queries(client, url)
    for group in groups:
        fleet(20, group)
    assert Device.objects.count() == 66
    assert count_queries(client, url) == few


def test_status_filter(client, operator):
    make_device("reg-1")
    make_device("act-1", status=DeviceStatus.ACTIVE)
    response = logged_in(client, operator).get(DEVICES + "?status__exact=active")
    assert "act-1" in response.text
    assert "reg-1" not in response.text


def test_device_type_filter_lists_types_and_filters(client, operator):
    make_device("cam-1", device_type="camera")
    make_device("gw-1", device_type="gateway")
    logged_in(client, operator)
    sidebar = client.get(DEVICES).text
    assert "?device_type=camera" in sidebar
    assert "?device_type=gateway" in sidebar
    response = client.get(DEVICES + "?device_type=camera")
    assert "cam-1" in response.text
    assert "gw-1" not in response.text


def test_group_filter(client, operator):
    north, south = make_group("north"), make_group("south")
    make_device("n-1", group=north)
    make_device("s-1", group=south)
    response = logged_in(client, operator).get(DEVICES + f"?group__id__exact={north.pk}")
    assert "n-1" in response.text
    assert "s-1" not in response.text


def test_firmware_version_filter_lists_versions_and_filters(client, operator):
    make_device("old-1", firmware_version="1.9.3")
    make_device("new-1", firmware_version="2.0.1")
    make_device("unset-1")
    logged_in(client, operator)
    sidebar = client.get(DEVICES).text
    assert "?firmware_version=1.9.3" in sidebar
    assert "?firmware_version=2.0.1" in sidebar
    assert "?firmware_version=&" not in sidebar
    response = client.get(DEVICES + "?firmware_version=1.9.3")
    assert "old-1" in response.text
    assert "new-1" not in response.text


@pytest.mark.usefixtures("last_seen_online")
@pytest.mark.parametrize(
    ("value", "shown", "hidden"), [("yes", "on-1", "off-1"), ("no", "off-1", "on-1")]
)
def test_online_filter(client, operator, value, shown, hidden):
    make_device("on-1", last_seen=timezone.now() - timedelta(seconds=10))
    make_device("off-1", last_seen=timezone.now() - timedelta(hours=2))
    response = logged_in(client, operator).get(DEVICES + f"?online={value}")
    assert shown in response.text
    assert hidden not in response.text


def test_never_seen_device_counts_as_offline(client, operator):
    make_device("new-1")
    response = logged_in(client, operator).get(DEVICES + "?online=no")
    assert "new-1" in response.text


@pytest.mark.parametrize(
    ("query", "field"),
    [("plant-7", "device_id"), ("sn-4471", "serial_number"), ("boiler", "device_name")],
)
def test_search_finds_device_by_id_serial_or_name(client, staff, query, field):
    make_device("plant-7-valve", serial_number="SN-4471-X", device_name="Boiler room valve")
    make_device("other-1", serial_number="SN-9", device_name="Roof sensor")
    response = logged_in(client, staff).get(DEVICES + f"?q={query}")
    assert "plant-7-valve" in response.text
    assert "other-1" not in response.text


# -- counts past the exact limit -----------------------------------------------------------


def test_small_list_shows_exact_count(client, operator, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 5
    fleet(3)
    response = logged_in(client, operator).get(DEVICES)
    assert response.context["cl"].result_count == 3
    assert not response.context["cl"].paginator.count_is_approximate
    assert "3 devices" in response.text
    assert "about" not in response.text


def test_large_list_shows_estimated_count(client, operator, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 3
    fleet(5)
    response = logged_in(client, operator).get(DEVICES)
    cl = response.context["cl"]
    assert cl.paginator.count_is_approximate
    assert cl.result_count > 3
    assert f"about {cl.result_count:,} devices" in response.text
    assert len(cl.result_list) == 5


def test_filtered_large_list_shows_estimated_result_count(client, operator, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 2
    for _ in range(4):
        make_device(status=DeviceStatus.ACTIVE)
    make_device()
    response = logged_in(client, operator).get(DEVICES + "?status__exact=active&q=dev")
    cl = response.context["cl"]
    assert cl.paginator.count_is_approximate
    assert "about" in response.text
    assert len(cl.result_list) == 4


def test_estimated_list_pages_without_counting_everything(client, operator, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 3
    fleet(5)
    logged_in(client, operator)
    with CaptureQueriesContext(connection) as ctx:
        client.get(DEVICES)
    # Counting queries (the page's own query holds each row's open-alert count, a subquery).
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT COUNT(")]
    assert counts
    assert all("LIMIT 4" in sql for sql in counts)


def analyze_devices():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE devices_device")


def test_estimate_for_the_whole_table_comes_from_its_statistics(db, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 3
    fleet(30)
    analyze_devices()
    paginator = EstimatedCountPaginator(Device.objects.order_by("-created_at", "-pk"), 2)
    assert (paginator.count, paginator.count_is_approximate) == (30, True)
    assert len(paginator.page(2).object_list) == 2
    # The far end of an estimated list is not linked: it is a guess and an OFFSET over everything.
    assert list(paginator.get_elided_page_range(1)) == [1, 2, 3, 4, Paginator.ELLIPSIS]


def test_estimate_for_a_filter_comes_from_the_planner(db, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 3
    fleet(30)
    for _ in range(10):
        make_device(status=DeviceStatus.ACTIVE)
    analyze_devices()
    paginator = EstimatedCountPaginator(Device.objects.filter(status="active").order_by("pk"), 5)
    assert paginator.count_is_approximate is False  # not computed yet
    assert 8 <= paginator.count <= 12
    assert paginator.count_is_approximate


# -- lifecycle actions ---------------------------------------------------------------------


def test_operator_moves_devices_with_an_action(client, operator):
    devices = [make_device(status=DeviceStatus.PROVISIONING) for _ in range(2)]
    response = run_action(logged_in(client, operator), "to_active", devices, reason="installed")
    assert "Moved 2 device(s) to active." in messages_of(response)
    assert [status_of(d) for d in devices] == ["active", "active"]
    event = DeviceEvent.objects.filter(device=devices[0], event_type=EventType.STATUS_CHANGED).get()
    assert event.actor == "otto"
    assert event.event_data == {"from": "provisioning", "to": "active", "reason": "installed"}


@pytest.mark.parametrize(
    ("action", "start", "target"),
    [
        ("to_provisioning", DeviceStatus.REGISTERED, DeviceStatus.PROVISIONING),
        ("to_maintenance", DeviceStatus.ACTIVE, DeviceStatus.MAINTENANCE),
        ("to_active", DeviceStatus.MAINTENANCE, DeviceStatus.ACTIVE),
        ("to_decommissioned", DeviceStatus.ACTIVE, DeviceStatus.DECOMMISSIONED),
    ],
)
def test_each_lifecycle_action_moves_a_device(client, operator, action, start, target):
    device = make_device(status=start)
    run_action(logged_in(client, operator), action, [device])
    assert status_of(device) == target


def test_illegal_move_is_refused_with_a_message(client, operator):
    device = make_device("fresh-1")
    response = run_action(logged_in(client, operator), "to_active", [device])
    assert response.status_code == 200
    [message] = messages_of(response)
    assert "fresh-1" in message
    assert "cannot move from registered to active" in message
    assert status_of(device) == DeviceStatus.REGISTERED
    assert not device.events.filter(event_type=EventType.STATUS_CHANGED).exists()


def test_mixed_selection_moves_the_legal_ones_and_names_the_rest(client, operator):
    ready = make_device("ready-1", status=DeviceStatus.PROVISIONING)
    gone = make_device("gone-1", status=DeviceStatus.DECOMMISSIONED)
    response = run_action(logged_in(client, operator), "to_active", [ready, gone])
    moved, refused = messages_of(response)
    assert moved == "Moved 1 device(s) to active."
    assert "gone-1" in refused
    assert "none (terminal status)" in refused
    assert status_of(ready) == DeviceStatus.ACTIVE
    assert status_of(gone) == DeviceStatus.DECOMMISSIONED


def test_action_over_too_many_devices_is_refused(client, operator, monkeypatch):
    monkeypatch.setattr(device_admin, "ACTION_MAX_DEVICES", 2)
    devices = [make_device(status=DeviceStatus.PROVISIONING) for _ in range(3)]
    response = run_action(logged_in(client, operator), "to_active", devices)
    assert "at most 2 devices" in messages_of(response)[0]
    assert {status_of(d) for d in devices} == {DeviceStatus.PROVISIONING}


def test_viewer_cannot_transition_devices(client, viewer):
    device = make_device(status=DeviceStatus.PROVISIONING)
    logged_in(client, viewer)
    assert "to_active" not in client.get(DEVICES).text
    run_action(client, "to_active", [device])
    assert status_of(device) == DeviceStatus.PROVISIONING
    assert not device.events.filter(event_type=EventType.STATUS_CHANGED).exists()


# -- device page ---------------------------------------------------------------------------


def test_device_page_shows_timeline_newest_first(client, staff, django_assert_max_num_queries):
    device = make_device("tl-1", status=DeviceStatus.PROVISIONING)
    DeviceEvent.objects.create(device=device, event_type="first_contact", actor="device")
    DeviceEvent.objects.create(device=device, event_type="heartbeat_missed", actor="system")
    logged_in(client, staff)
    # Session, user, permissions (2), the device; one or two per tab: dynamic groups, presence
    # and health (2), shadows, certificates, executions, rollout entries, events.
    with django_assert_max_num_queries(14):
        response = client.get(change_url(device))
    assert response.status_code == 200
    text = response.text
    assert text.index("heartbeat_missed") < text.index("first_contact") < text.index(">registered<")
    assert f"{EVENTS}?device={device.pk}" in text


def test_device_page_queries_do_not_grow_with_events(client, operator):
    device = make_device()
    logged_in(client, operator)
    few = count_queries(client, change_url(device))
    DeviceEvent.objects.bulk_create(
        DeviceEvent(device=device, event_type="heartbeat", actor="device") for _ in range(80)
    )
    assert count_queries(client, change_url(device)) == few


def test_operator_moves_a_device_from_its_page(client, operator):
    device = make_device(status=DeviceStatus.ACTIVE)
    logged_in(client, operator)
    page = client.get(change_url(device)).text
    assert 'value="maintenance"' in page
    assert 'value="provisioning"' not in page
    response = client.post(
        transition_url(device),
        {"target": "maintenance", "reason": "battery swap", "current": "active"},
        follow=True,
    )
    assert f"Device {device.device_id} is now maintenance." in messages_of(response)
    assert status_of(device) == DeviceStatus.MAINTENANCE
    assert device.events.get(event_type=EventType.STATUS_CHANGED).event_data["reason"] == (
        "battery swap"
    )


def test_illegal_move_from_device_page_shows_an_error(client, operator):
    device = make_device()
    response = logged_in(client, operator).post(
        transition_url(device), {"target": "active", "current": "registered"}, follow=True
    )
    assert response.status_code == 200
    assert "cannot move from registered to active" in messages_of(response)[0]
    assert status_of(device) == DeviceStatus.REGISTERED


def test_move_from_a_stale_device_page_is_refused(client, operator):
    device = make_device(status=DeviceStatus.MAINTENANCE)
    response = logged_in(client, operator).post(
        transition_url(device), {"target": "maintenance", "current": "active"}, follow=True
    )
    assert "reload and try again" in messages_of(response)[0]
    assert status_of(device) == DeviceStatus.MAINTENANCE


def test_viewer_cannot_move_a_device_from_its_page(client, viewer):
    device = make_device(status=DeviceStatus.ACTIVE)
    logged_in(client, viewer)
    assert "transition-form" not in client.get(change_url(device)).text
    response = client.post(transition_url(device), {"target": "maintenance", "current": "active"})
    assert response.status_code == 403
    assert status_of(device) == DeviceStatus.ACTIVE


def test_viewer_cannot_change_a_device(client, viewer):
    device = make_device(device_name="before")
    response = logged_in(client, viewer).post(change_url(device), {"device_name": "after"})
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.device_name == "before"


def test_operator_cannot_add_or_edit_devices(client, operator):
    device = make_device(device_name="before")
    logged_in(client, operator)
    assert client.get(ADD_DEVICE).status_code == 403
    assert client.post(change_url(device), {"device_name": "after"}).status_code == 403
    device.refresh_from_db()
    assert device.device_name == "before"


@pytest.mark.parametrize("role", ["fleet_admin", "superuser"])
def test_nobody_can_delete_a_device(client, db, request, role):
    user = (
        User.objects.create_superuser("root", password="x")
        if role == "superuser"
        else request.getfixturevalue(role)
    )
    device = make_device()
    logged_in(client, user)
    delete = reverse("admin:devices_device_delete", args=[device.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert "delete_selected" not in client.get(DEVICES).text
    assert Device.objects.filter(pk=device.pk).exists()


# -- add and change (Fleet admin) ----------------------------------------------------------


def device_form(**fields) -> dict:
    return {
        "device_id": "valve-9",
        "device_type": "valve",
        "device_name": "",
        "metadata": "{}",
        "location": "",
        # The certificates inline's management form, as the browser sends it.
        "credentials-TOTAL_FORMS": "0",
        "credentials-INITIAL_FORMS": "0",
        **fields,
    }


def test_admin_registers_a_device(client, fleet_admin):
    response = logged_in(client, fleet_admin).post(ADD_DEVICE, device_form())
    assert response.status_code == 302
    device = Device.objects.get(device_id="valve-9")
    assert device.status == DeviceStatus.REGISTERED
    assert device.events.get().actor == "ada"


@pytest.mark.parametrize("bad_id", ["has/slash", "plus+", "hash#", "with space", "x" * 129])
def test_admin_add_with_bad_device_id_shows_a_form_error(client, fleet_admin, bad_id):
    response = logged_in(client, fleet_admin).post(ADD_DEVICE, device_form(device_id=bad_id))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["device_id"]
    assert not Device.objects.exists()


def test_admin_add_with_taken_device_id_shows_a_form_error(client, fleet_admin):
    make_device("valve-9")
    response = logged_in(client, fleet_admin).post(ADD_DEVICE, device_form())
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["device_id"]


def test_admin_add_with_non_object_metadata_shows_a_form_error(client, fleet_admin):
    response = logged_in(client, fleet_admin).post(ADD_DEVICE, device_form(metadata="[1, 2]"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["metadata"]


def test_admin_edit_records_the_change_and_keeps_id_and_status(client, fleet_admin):
    device = make_device("valve-9", device_type="valve")
    response = logged_in(client, fleet_admin).post(
        change_url(device),
        device_form(device_id="renamed", device_name="Main valve", status="active"),
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.device_id, device.device_name, device.status) == (
        "valve-9",
        "Main valve",
        DeviceStatus.REGISTERED,
    )
    event = device.events.get(event_type=EventType.UPDATED)
    assert event.actor == "ada"
    assert event.event_data == {"changes": {"device_name": ["", "Main valve"]}}


def test_admin_device_page_offers_static_groups_only(client, fleet_admin):
    make_group("static-1")
    make_group("all-cameras", filters={"device_type": "camera"})
    page = logged_in(client, fleet_admin).get(change_url(make_device())).text
    assert 'name="_save"' in page
    assert "static-1" in page
    assert "all-cameras" not in page


def test_device_cannot_join_a_dynamic_group(client, fleet_admin):
    dynamic = make_group("all-cameras", filters={"device_type": "camera"})
    device = make_device()
    response = logged_in(client, fleet_admin).post(
        change_url(device), device_form(device_type="sensor", group=str(dynamic.pk))
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["group"]


def test_decommissioned_device_page_is_read_only(client, fleet_admin):
    device = make_device(status=DeviceStatus.DECOMMISSIONED, device_name="old")
    logged_in(client, fleet_admin)
    page = client.get(change_url(device))
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert "transition-form" not in page.text
    assert client.post(change_url(device), device_form(device_name="new")).status_code == 403
    device.refresh_from_db()
    assert device.device_name == "old"


# -- groups --------------------------------------------------------------------------------


def test_group_list_shows_member_counts(client, staff, django_assert_max_num_queries):
    fleet(3, make_group("north"))
    make_group("empty")
    make_group("cameras", filters={"device_type": "camera"})
    logged_in(client, staff)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(GROUPS)
    rows = {g.name: g for g in response.context["cl"].result_list}
    assert (rows["north"].member_count, rows["empty"].member_count) == (3, 0)
    assert "static" in response.text
    assert "dynamic" in response.text


def test_group_list_queries_do_not_grow_with_groups(client, operator):
    for i in range(2):
        fleet(2, make_group(f"a-{i}"))
    logged_in(client, operator)
    few = count_queries(client, GROUPS)
    for i in range(20):
        fleet(2, make_group(f"b-{i}"))
    assert count_queries(client, GROUPS) == few


def test_group_search(client, operator):
    make_group("warehouse-east")
    make_group("office")
    response = logged_in(client, operator).get(GROUPS + "?q=wareh")
    assert [g.name for g in response.context["cl"].result_list] == ["warehouse-east"]


def test_operator_creates_a_group(client, operator):
    response = logged_in(client, operator).post(
        reverse("admin:devices_devicegroup_add"),
        {
            "name": "lab",
            "description": "",
            "filters": '{"field": "device_type", "op": "eq", "value": "sensor"}',
        },
    )
    assert response.status_code == 302
    assert DeviceGroup.objects.get(name="lab").is_dynamic


@pytest.mark.parametrize("filters", ["[1, 2]", '"text"', "7"])
def test_group_filters_must_be_an_object(client, operator, filters):
    response = logged_in(client, operator).post(
        reverse("admin:devices_devicegroup_add"),
        {"name": "lab", "description": "", "filters": filters},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["filters"]
    assert not DeviceGroup.objects.exists()


def test_viewer_cannot_add_a_group(client, viewer):
    response = logged_in(client, viewer).post(
        reverse("admin:devices_devicegroup_add"), {"name": "lab", "filters": "{}"}
    )
    assert response.status_code == 403


# -- events --------------------------------------------------------------------------------


def test_event_list(client, staff, django_assert_max_num_queries):
    make_device("ev-1")
    logged_in(client, staff)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(EVENTS)
    assert response.status_code == 200
    assert "ev-1" in response.text
    assert "?event_type=registered" in response.text


def test_event_list_queries_do_not_grow_with_events(client, operator):
    fleet(3)
    logged_in(client, operator)
    few = count_queries(client, EVENTS)
    fleet(40)
    assert count_queries(client, EVENTS) == few


def test_event_list_filters_by_type(client, operator):
    device = make_device("ev-1")
    DeviceEvent.objects.create(device=device, event_type="custom_thing", actor="system")
    response = logged_in(client, operator).get(EVENTS + "?event_type=custom_thing")
    assert [e.event_type for e in response.context["cl"].result_list] == ["custom_thing"]


def test_event_list_searches_by_device_id_prefix(client, operator):
    make_device("pump-1")
    make_device("valve-1")
    response = logged_in(client, operator).get(EVENTS + "?q=pump")
    assert [str(e.device) for e in response.context["cl"].result_list] == ["pump-1"]


def test_event_list_of_one_device(client, operator):
    device = make_device("pump-1")
    make_device("valve-1")
    response = logged_in(client, operator).get(EVENTS + f"?device={device.pk}")
    assert [str(e.device) for e in response.context["cl"].result_list] == ["pump-1"]


def test_events_cannot_be_added_changed_or_deleted(client, fleet_admin):
    event = make_device().events.get()
    logged_in(client, fleet_admin)
    assert client.get(reverse("admin:devices_deviceevent_add")).status_code == 403
    change = reverse("admin:devices_deviceevent_change", args=[event.pk])
    assert 'name="_save"' not in client.get(change).text
    assert client.post(change, {"actor": "mallory"}).status_code == 403
    delete = reverse("admin:devices_deviceevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.actor == "system"
