"""The REST API for integrators: /api/v1/devices/, /groups/, /events/."""

import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from devices.choices import DeviceStatus, EventType
from devices.models import Device, DeviceEvent, DeviceGroup
from tests.conftest import make_device, make_group, make_user, token_client

DEVICES = "/api/v1/devices/"
GROUPS = "/api/v1/groups/"
EVENTS = "/api/v1/events/"


def device_url(device_id: str, suffix: str = "") -> str:
    return f"{DEVICES}{device_id}/{suffix}"


def transition_url(device_id: str) -> str:
    return device_url(device_id, "transition/")


def written() -> tuple[int, int, int]:
    """What a refused request must leave untouched."""
    return Device.objects.count(), DeviceEvent.objects.count(), DeviceGroup.objects.count()


def assert_refused(response, field: str, status: int = 400) -> None:
    assert response.status_code == status, response.content
    assert field in response.json(), response.json()


def new_device(**fields) -> dict:
    return {"device_id": "sensor-1", "device_type": "sensor", **fields}


def ids(response) -> list[str]:
    return [item["device_id"] for item in response.json()["results"]]


@pytest.fixture
def device(db):
    return make_device("pump-7", device_name="Pump 7", serial_number="SN-7")


@pytest.fixture
def active_device(db):
    return make_device("pump-8", status=DeviceStatus.ACTIVE)


# --- authentication --------------------------------------------------------------------------


def every_endpoint() -> list[tuple[str, str]]:
    return [
        ("get", DEVICES),
        ("post", DEVICES),
        ("get", device_url("pump-7")),
        ("patch", device_url("pump-7")),
        ("get", device_url("pump-7", "events/")),
        ("post", transition_url("pump-7")),
        ("get", GROUPS),
        ("post", GROUPS),
        ("get", EVENTS),
    ]


@pytest.mark.parametrize(("method", "url"), every_endpoint())
def test_request_without_token_is_401(device, method, url):
    before = written()
    response = getattr(APIClient(), method)(url, {}, format="json")
    assert response.status_code == 401
    assert written() == before


@pytest.mark.parametrize(("method", "url"), every_endpoint())
def test_request_with_wrong_token_is_401(device, method, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    before = written()
    response = getattr(client, method)(url, {}, format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."
    assert written() == before


def test_logged_in_operator_can_read_with_session(operator, device):
    client = APIClient()
    client.force_login(operator)
    assert client.get(device_url("pump-7")).status_code == 200


def test_user_without_a_role_cannot_read(device, django_user_model):
    client = token_client(django_user_model.objects.create_user("nobody"))
    assert client.get(DEVICES).status_code == 403
    assert client.get(EVENTS).status_code == 403
    assert client.get(device_url("pump-7", "events/")).status_code == 403


# --- devices: reading ------------------------------------------------------------------------


def test_viewer_lists_devices_newest_first(viewer_api):
    for n in range(3):
        make_device(f"d-{n}")
    response = viewer_api.get(DEVICES)
    assert response.status_code == 200
    assert ids(response) == ["d-2", "d-1", "d-0"]


def test_viewer_retrieves_device_by_device_id(viewer_api):
    group = make_group("building-a")
    make_device("gw:01_a-b", group=group, location={"lat": 52.5}, metadata={"site": "berlin"})
    body = viewer_api.get(device_url("gw:01_a-b")).json()
    assert body["device_id"] == "gw:01_a-b"
    assert body["group"] == "building-a"
    assert body["status"] == "registered"
    assert body["allowed_transitions"] == ["provisioning", "decommissioned"]
    assert body["online"] is False
    assert body["location"] == {"lat": 52.5}
    assert body["metadata"] == {"site": "berlin"}


@pytest.mark.usefixtures("last_seen_online")
def test_device_seen_recently_is_online(viewer_api, device):
    Device.objects.filter(pk=device.pk).update(last_seen=timezone.now())
    assert viewer_api.get(device_url("pump-7")).json()["online"] is True


def test_unknown_device_is_404(viewer_api):
    assert viewer_api.get(device_url("no-such-device")).status_code == 404


def test_device_id_with_illegal_characters_in_url_is_404(viewer_api):
    assert viewer_api.get(DEVICES + "a+b/").status_code == 404


# --- devices: registering --------------------------------------------------------------------


def test_admin_registers_device(admin_api):
    make_group("building-a")
    response = admin_api.post(
        DEVICES,
        new_device(
            device_name="Hall sensor",
            group="building-a",
            last_ip_address="10.0.0.7",
            location={"lat": 1.5, "lon": 2.5},
            metadata={"site": "berlin"},
        ),
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "registered"
    device = Device.objects.get(device_id="sensor-1")
    assert device.group.name == "building-a"
    assert device.last_ip_address == "10.0.0.7"
    event = device.events.get()
    assert (event.event_type, event.actor) == (EventType.REGISTERED, "token:ada")


def test_new_device_starts_registered_even_if_asked_otherwise(admin_api):
    before = written()
    response = admin_api.post(DEVICES, new_device(status="active"))
    assert_refused(response, "status")
    assert "/transition/" in response.json()["status"][0]
    assert written() == before


def test_operator_cannot_register_device(operator_api):
    before = written()
    assert operator_api.post(DEVICES, new_device()).status_code == 403
    assert written() == before


def test_viewer_cannot_register_device(viewer_api):
    before = written()
    assert viewer_api.post(DEVICES, new_device()).status_code == 403
    assert written() == before


# --- devices: bad input ----------------------------------------------------------------------


def test_unknown_fields_are_refused_by_name(admin_api):
    before = written()
    response = admin_api.post(DEVICES, new_device(colour="red", owner="bob"))
    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."], "owner": ["Unknown field."]}
    assert written() == before


@pytest.mark.parametrize("device_id", ["a/b", "a+b", "a#b", "a b", "x" * 129, ""])
def test_bad_device_id_is_refused(admin_api, device_id):
    before = written()
    assert_refused(admin_api.post(DEVICES, new_device(device_id=device_id)), "device_id")
    assert written() == before


def test_device_id_of_128_characters_is_accepted(admin_api):
    response = admin_api.post(DEVICES, new_device(device_id="x" * 128))
    assert response.status_code == 201


def test_duplicate_device_id_is_refused(admin_api, device):
    before = written()
    assert_refused(admin_api.post(DEVICES, new_device(device_id="pump-7")), "device_id")
    assert written() == before


def test_decommissioned_device_id_stays_taken(admin_api):
    make_device("old-1", status=DeviceStatus.DECOMMISSIONED)
    before = written()
    assert_refused(admin_api.post(DEVICES, new_device(device_id="old-1")), "device_id")
    assert written() == before


@pytest.mark.parametrize("address", ["999.1.1.1", "not-an-ip", "10.0.0"])
def test_invalid_ip_address_is_refused(admin_api, address):
    before = written()
    response = admin_api.post(DEVICES, new_device(last_ip_address=address))
    assert_refused(response, "last_ip_address")
    assert written() == before


@pytest.mark.parametrize("field", ["location", "metadata"])
@pytest.mark.parametrize("value", [[1, 2], "home", 42])
def test_non_object_json_is_refused_on_create(admin_api, field, value):
    before = written()
    response = admin_api.post(DEVICES, new_device(**{field: value}))
    assert_refused(response, field)
    assert written() == before


@pytest.mark.parametrize("field", ["location", "metadata"])
@pytest.mark.parametrize("value", [[1, 2], "home", 42])
def test_non_object_json_is_refused_on_update(admin_api, device, field, value):
    before = written()
    assert_refused(admin_api.patch(device_url("pump-7"), {field: value}), field)
    assert written() == before


def test_unknown_group_is_refused(admin_api):
    before = written()
    response = admin_api.post(DEVICES, new_device(group="nowhere"))
    assert_refused(response, "group")
    assert response.json()["group"] == ["No group is named nowhere."]
    assert written() == before


def test_dynamic_group_cannot_take_members(admin_api):
    make_group("hot", filters={"device_type": "sensor"})
    before = written()
    assert_refused(admin_api.post(DEVICES, new_device(group="hot")), "group")
    assert written() == before


def test_missing_device_type_is_refused(admin_api):
    before = written()
    assert_refused(admin_api.post(DEVICES, {"device_id": "x-1"}), "device_type")
    assert written() == before


def test_body_that_is_not_an_object_is_refused(admin_api):
    before = written()
    assert_refused(admin_api.post(DEVICES, [new_device()]), "non_field_errors")
    assert written() == before


# --- devices: updating -----------------------------------------------------------------------


def test_admin_updates_mutable_fields(admin_api, device):
    make_group("building-b")
    response = admin_api.patch(
        device_url("pump-7"),
        {"device_name": "Pump seven", "group": "building-b", "metadata": {"floor": 3}},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["group"] == "building-b"
    device.refresh_from_db()
    assert (device.device_name, device.group.name) == ("Pump seven", "building-b")
    event = device.events.get(event_type=EventType.UPDATED)
    assert event.actor == "token:ada"
    assert event.event_data["changes"]["device_name"] == ["Pump 7", "Pump seven"]


def test_admin_puts_what_it_read(admin_api, device):
    body = admin_api.get(device_url("pump-7")).json()
    body["firmware_version"] = "2.0.1"
    response = admin_api.put(device_url("pump-7"), body)
    assert response.status_code == 200, response.json()
    device.refresh_from_db()
    assert device.firmware_version == "2.0.1"


def test_group_can_be_cleared(admin_api):
    make_device("g-1", group=make_group("building-a"))
    assert admin_api.patch(device_url("g-1"), {"group": None}).json()["group"] is None
    assert Device.objects.get(device_id="g-1").group is None


def test_status_cannot_be_changed_by_update(admin_api, device):
    before = written()
    response = admin_api.patch(device_url("pump-7"), {"status": "active"})
    assert_refused(response, "status")
    assert "/transition/" in response.json()["status"][0]
    assert Device.objects.get(pk=device.pk).status == DeviceStatus.REGISTERED
    assert written() == before


def test_device_id_cannot_be_changed(admin_api, device):
    before = written()
    response = admin_api.patch(device_url("pump-7"), {"device_id": "pump-9"})
    assert_refused(response, "device_id")
    assert response.json()["device_id"] == ["device_id cannot be changed."]
    assert Device.objects.filter(device_id="pump-7").exists()
    assert written() == before


def test_unknown_fields_are_refused_on_update(admin_api, device):
    before = written()
    response = admin_api.patch(device_url("pump-7"), {"device_nmae": "typo"})
    assert response.json() == {"device_nmae": ["Unknown field."]}
    assert written() == before


def test_decommissioned_device_cannot_be_updated(admin_api):
    make_device("old-1", status=DeviceStatus.DECOMMISSIONED)
    before = written()
    response = admin_api.patch(device_url("old-1"), {"device_name": "again"})
    assert response.status_code == 400
    assert response.json()["code"] == "decommissioned"
    assert written() == before


def test_operator_cannot_update_device(operator_api, device):
    before = written()
    assert operator_api.patch(device_url("pump-7"), {"device_name": "x"}).status_code == 403
    assert written() == before


def test_viewer_cannot_update_device(viewer_api, device):
    before = written()
    assert viewer_api.patch(device_url("pump-7"), {"device_name": "x"}).status_code == 403
    assert viewer_api.put(device_url("pump-7"), new_device()).status_code == 403
    assert written() == before


@pytest.mark.parametrize("client", ["admin_api", "viewer_api"])
def test_devices_cannot_be_deleted(request, device, client):
    response = request.getfixturevalue(client).delete(device_url("pump-7"))
    assert response.status_code == 405
    assert Device.objects.filter(pk=device.pk).exists()


# --- devices: lifecycle ----------------------------------------------------------------------


def test_operator_transitions_device(operator_api, active_device):
    response = operator_api.post(
        transition_url("pump-8"), {"status": "maintenance", "reason": "pump swap"}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "maintenance"
    assert response.json()["allowed_transitions"] == ["active", "decommissioned"]
    event = active_device.events.get(event_type=EventType.STATUS_CHANGED)
    assert event.actor == "token:otto"
    assert event.event_data == {"from": "active", "to": "maintenance", "reason": "pump swap"}


def test_admin_decommissions_device(admin_api, device):
    response = admin_api.post(transition_url("pump-7"), {"status": "decommissioned"})
    assert response.json()["status"] == "decommissioned"
    assert response.json()["allowed_transitions"] == []


@pytest.mark.parametrize(
    ("current", "target"),
    [(DeviceStatus.REGISTERED, "active"), (DeviceStatus.DECOMMISSIONED, "active")],
)
def test_illegal_transition_is_refused(operator_api, current, target):
    make_device("d-1", status=current)
    before = written()
    response = operator_api.post(transition_url("d-1"), {"status": target})
    assert_refused(response, "status")
    assert response.json()["code"] == "illegal_transition"
    assert Device.objects.get(device_id="d-1").status == current
    assert written() == before


def test_unknown_target_status_is_refused(operator_api, device):
    before = written()
    assert_refused(operator_api.post(transition_url("pump-7"), {"status": "flying"}), "status")
    assert written() == before


def test_stale_from_status_is_409(operator_api, active_device):
    before = written()
    response = operator_api.post(
        transition_url("pump-8"), {"status": "decommissioned", "from_status": "maintenance"}
    )
    assert_refused(response, "from_status", status=409)
    assert Device.objects.get(pk=active_device.pk).status == DeviceStatus.ACTIVE
    assert written() == before


def test_unknown_fields_are_refused_on_transition(operator_api, active_device):
    before = written()
    response = operator_api.post(transition_url("pump-8"), {"status": "maintenance", "why": "x"})
    assert response.json() == {"why": ["Unknown field."]}
    assert written() == before


def test_transition_of_unknown_device_is_404(operator_api):
    assert operator_api.post(transition_url("nope"), {"status": "active"}).status_code == 404


def test_viewer_cannot_transition_device(viewer_api, active_device):
    before = written()
    response = viewer_api.post(transition_url("pump-8"), {"status": "maintenance"})
    assert response.status_code == 403
    assert Device.objects.get(pk=active_device.pk).status == DeviceStatus.ACTIVE
    assert written() == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_transitions_cannot_both_win(operator):
    make_device("race-1", status=DeviceStatus.ACTIVE)
    clients = [token_client(operator), token_client(make_user("olga", "Fleet operator"))]
    start, codes = threading.Barrier(2), []

    def move(client):
        start.wait()
        try:
            body = {"status": "maintenance", "from_status": "active"}
            codes.append(client.post(transition_url("race-1"), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 409]
    assert DeviceEvent.objects.filter(event_type=EventType.STATUS_CHANGED).count() == 1


# --- devices: a device's events ----------------------------------------------------------------


def test_device_events_newest_first(viewer_api, operator_api, active_device):
    make_device("other")
    operator_api.post(transition_url("pump-8"), {"status": "maintenance"})
    response = viewer_api.get(device_url("pump-8", "events/"))
    assert response.status_code == 200
    events = response.json()["results"]
    assert [e["event_type"] for e in events] == ["status_changed", "registered"]
    assert {e["device"] for e in events} == {"pump-8"}


def test_events_of_unknown_device_is_404(viewer_api):
    assert viewer_api.get(device_url("nope", "events/")).status_code == 404


# --- devices: filters ------------------------------------------------------------------------


def test_filter_by_several_statuses(viewer_api):
    make_device("a", status=DeviceStatus.ACTIVE)
    make_device("m", status=DeviceStatus.MAINTENANCE)
    make_device("r")
    response = viewer_api.get(DEVICES, {"status": ["active", "maintenance"]})
    assert sorted(ids(response)) == ["a", "m"]


@pytest.mark.parametrize(
    "field",
    [
        "device_type",
        "firmware_version",
        "hardware_version",
        "manufacturer",
        "model",
        "serial_number",
    ],
)
def test_filter_by_exact_field(viewer_api, field):
    make_device("hit", **{field: "wanted"})
    make_device("miss", **{field: "other"})
    assert ids(viewer_api.get(DEVICES, {field: "wanted"})) == ["hit"]


def test_filter_by_gateway(viewer_api):
    make_device("broker-1")
    make_device("aws-1", gateway="aws")
    assert ids(viewer_api.get(DEVICES, {"gateway": "aws"})) == ["aws-1"]
    assert ids(viewer_api.get(DEVICES, {"gateway": "mosquitto"})) == ["broker-1"]


def test_filter_by_group_name(viewer_api):
    make_device("in", group=make_group("building-a"))
    make_device("out", group=make_group("building-b"))
    assert ids(viewer_api.get(DEVICES, {"group": "building-a"})) == ["in"]


@pytest.mark.usefixtures("last_seen_online")
def test_filter_online_and_offline(viewer_api):
    make_device("on")
    make_device("off")
    make_device("never")
    Device.objects.filter(device_id="on").update(last_seen=timezone.now())
    Device.objects.filter(device_id="off").update(last_seen=timezone.now() - timedelta(days=1))
    assert ids(viewer_api.get(DEVICES, {"online": "true"})) == ["on"]
    assert sorted(ids(viewer_api.get(DEVICES, {"online": "false"}))) == ["never", "off"]


def test_filter_by_time_ranges(viewer_api):
    now = timezone.now()
    for days in [1, 3, 5]:
        moment = now - timedelta(days=days)
        Device.objects.filter(pk=make_device(f"t-{days}").pk).update(
            created_at=moment, last_seen=moment
        )
    after, before = (now - timedelta(days=4)).isoformat(), (now - timedelta(days=2)).isoformat()
    for field in ["created", "last_seen"]:
        response = viewer_api.get(DEVICES, {f"{field}_after": after, f"{field}_before": before})
        assert ids(response) == ["t-3"], field


def test_filter_by_metadata(viewer_api):
    make_device("berlin", metadata={"site": "berlin", "floor": 3})
    make_device("paris", metadata={"site": "paris", "floor": "3"})
    make_device("bare")
    assert ids(viewer_api.get(DEVICES, {"metadata": "site:berlin"})) == ["berlin"]
    assert ids(viewer_api.get(DEVICES, {"metadata": "floor:3"})) == ["berlin"]
    assert ids(viewer_api.get(DEVICES, {"metadata": 'floor:"3"'})) == ["paris"]
    assert sorted(ids(viewer_api.get(DEVICES, {"metadata_has_key": "site"}))) == [
        "berlin",
        "paris",
    ]


def test_search_matches_id_name_and_serial(viewer_api):
    make_device("boiler-1")
    make_device("x-2", device_name="Old BOILER")
    make_device("x-3", serial_number="SN-boiler-9")
    make_device("pump-1")
    assert sorted(ids(viewer_api.get(DEVICES, {"q": "boiler"}))) == ["boiler-1", "x-2", "x-3"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "flying"),
        ("online", "maybe"),
        ("group", "nowhere"),
        ("created_after", "yesterday"),
        ("created_before", "2024-13-01"),
        ("last_seen_after", "soon"),
        ("last_seen_before", "later"),
        ("metadata", "no-colon"),
        ("gateway", "carrier-pigeon"),
    ],
)
def test_bad_filter_value_is_400_naming_it(viewer_api, device, param, value):
    assert_refused(viewer_api.get(DEVICES, {param: value}), param)


# --- devices: pagination and query counts ----------------------------------------------------


def walk(client, url: str, params: dict) -> list[dict]:
    pages, response = [], client.get(url, params)
    while True:
        assert response.status_code == 200
        pages.append(response.json())
        if not pages[-1]["next"]:
            return pages
        response = client.get(pages[-1]["next"])


def test_cursor_pages_cover_every_device_once(viewer_api):
    for n in range(23):
        make_device(f"d-{n:02d}")
    pages = walk(viewer_api, DEVICES, {"page_size": 5})
    seen = [item["device_id"] for page in pages for item in page["results"]]
    assert len(pages) == 5
    assert seen == [f"d-{n:02d}" for n in reversed(range(23))]


def test_deep_cursor_page_matches_its_position(viewer_api):
    for n in range(60):
        make_device(f"d-{n:02d}")
    pages = walk(viewer_api, DEVICES, {"page_size": 4})
    assert ids_of(pages[11]) == ["d-15", "d-14", "d-13", "d-12"]
    previous = viewer_api.get(pages[11]["previous"]).json()
    assert ids_of(previous) == ["d-19", "d-18", "d-17", "d-16"]


def ids_of(page: dict) -> list[str]:
    return [item["device_id"] for item in page["results"]]


def populate(count: int) -> None:
    groups = [make_group(f"g-{n}") for n in range(3)]
    for n in range(count):
        gateway = "aws" if n % 2 else "mosquitto"
        device = make_device(f"q-{n:03d}", group=groups[n % 3], metadata={"n": n}, gateway=gateway)
        device.events.create(event_type=EventType.UPDATED, actor="system")


@pytest.mark.parametrize("count", [5, 60])
@pytest.mark.parametrize(
    "url",
    [
        DEVICES,
        DEVICES + "?status=registered",
        DEVICES + "?gateway=aws",
        EVENTS,
        GROUPS,
        device_url("q-000", "events/"),
    ],
)
def test_list_queries_do_not_grow_with_the_fleet(
    viewer_api, django_assert_max_num_queries, count, url
):
    populate(count)
    # Token and user, the user's permissions (2), the page, plus the groups' count or the
    # device of a device's events.
    with django_assert_max_num_queries(5):
        assert viewer_api.get(url).status_code == 200


# --- groups ----------------------------------------------------------------------------------


def group_url(group: DeviceGroup) -> str:
    return f"{GROUPS}{group.pk}/"


def test_viewer_lists_groups_with_member_counts(viewer_api):
    a, b = make_group("a"), make_group("b")
    for n in range(3):
        make_device(f"a-{n}", group=a)
    make_device("b-0", group=b)
    make_device("loose")
    body = viewer_api.get(GROUPS).json()
    assert body["count"] == 2
    assert [(g["name"], g["member_count"]) for g in body["results"]] == [("a", 3), ("b", 1)]


def test_group_filtered_by_name(viewer_api):
    make_group("a")
    make_group("b")
    assert [g["name"] for g in viewer_api.get(GROUPS, {"name": "b"}).json()["results"]] == ["b"]


def test_viewer_retrieves_group(viewer_api):
    group = make_group("a", description="first floor")
    body = viewer_api.get(group_url(group)).json()
    assert body["description"] == "first floor"
    assert body["member_count"] == 0
    assert body["is_dynamic"] is False


def test_operator_creates_group_and_it_is_logged(operator_api, operator):
    heaters = {"field": "device_type", "op": "eq", "value": "heater"}
    response = operator_api.post(GROUPS, {"name": "hot", "filters": heaters}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["is_dynamic"] is True
    assert response.json()["member_count"] == 0
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_repr) == (operator, ADDITION, "hot")


def test_operator_updates_group_and_it_is_logged(operator_api, operator):
    group = make_group("a")
    make_device("a-1", group=group)
    response = operator_api.patch(group_url(group), {"description": "roof"})
    assert response.status_code == 200, response.json()
    assert response.json()["member_count"] == 1
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag) == (operator, CHANGE)
    assert entry.get_change_message() == "Changed description."


def test_operator_deletes_group_and_its_devices_stay(operator_api, operator):
    group = make_group("a")
    make_device("a-1", group=group)
    assert operator_api.delete(group_url(group)).status_code == 204
    assert Device.objects.get(device_id="a-1").group is None
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_repr) == (operator, DELETION, "a")


def test_viewer_cannot_change_groups(viewer_api):
    group = make_group("a")
    before = written()
    assert viewer_api.post(GROUPS, {"name": "b"}).status_code == 403
    assert viewer_api.patch(group_url(group), {"description": "x"}).status_code == 403
    assert viewer_api.delete(group_url(group)).status_code == 403
    assert written() == before
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("filters", [[1], "device_type=x", 7])
def test_group_filters_must_be_an_object(operator_api, filters):
    before = written()
    assert_refused(operator_api.post(GROUPS, {"name": "x", "filters": filters}), "filters")
    assert written() == before
    assert not LogEntry.objects.exists()


def test_duplicate_group_name_is_refused(operator_api):
    make_group("a")
    before = written()
    assert_refused(operator_api.post(GROUPS, {"name": "a"}), "name")
    assert written() == before


def test_unknown_group_fields_are_refused(operator_api):
    before = written()
    response = operator_api.post(GROUPS, {"name": "a", "members": ["d-1"]})
    assert response.json() == {"members": ["Unknown field."]}
    assert written() == before


# --- events ----------------------------------------------------------------------------------


def test_viewer_lists_events_newest_first(viewer_api, operator_api, active_device):
    operator_api.post(transition_url("pump-8"), {"status": "maintenance"})
    body = viewer_api.get(EVENTS).json()
    assert [(e["device"], e["event_type"]) for e in body["results"]] == [
        ("pump-8", "status_changed"),
        ("pump-8", "registered"),
    ]


def test_events_filtered(viewer_api, operator_api, active_device):
    make_device("other")
    operator_api.post(transition_url("pump-8"), {"status": "maintenance"})

    def types(**params):
        return [e["event_type"] for e in viewer_api.get(EVENTS, params).json()["results"]]

    assert types(device="pump-8") == ["status_changed", "registered"]
    assert types(event_type="status_changed") == ["status_changed"]
    assert types(actor="token:otto") == ["status_changed"]
    assert types(created_after=timezone.now().isoformat()) == []
    assert len(types(created_before=timezone.now().isoformat())) == 3


def test_bad_event_filter_is_400_naming_it(viewer_api):
    assert_refused(viewer_api.get(EVENTS, {"created_after": "yesterday"}), "created_after")


def test_viewer_retrieves_one_event(viewer_api, device):
    event = device.events.get()
    body = viewer_api.get(f"{EVENTS}{event.pk}/").json()
    assert (body["device"], body["event_type"], body["actor"]) == ("pump-7", "registered", "system")


def test_events_are_read_only(admin_api, device):
    before = written()
    event = device.events.get()
    assert admin_api.post(EVENTS, {"event_type": "x"}).status_code == 405
    assert admin_api.delete(f"{EVENTS}{event.pk}/").status_code == 405
    assert written() == before
