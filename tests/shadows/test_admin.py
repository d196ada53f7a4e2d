"""The shadow admin: the fleet's shadows, one shadow side by side, editing desired, history."""

import html as htmllib
import json
import re

import pytest
from django.contrib.messages import get_messages

from fleetportal.models import OutboxMessage
from shadows import services
from shadows.models import Shadow, ShadowHistory
from tests.conftest import make_device

# Every test here uses the database (some only through fixtures picked by parameter).
pytestmark = pytest.mark.django_db

LIST = "/admin/shadows/shadow/"


def page(shadow: Shadow) -> str:
    return f"/admin/shadows/shadow/{shadow.pk}/change/"


@pytest.fixture(params=["operator", "viewer"])
def staff(request, client):
    user = request.getfixturevalue(request.param)
    client.force_login(user)
    return user


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.fixture
def shadow(db):
    device = make_device("dev-adm1")
    services.update(device, "", b'{"state":{"reported":{"temp":20,"fan":"off"}}}', actor="device")
    return services.set_desired(device, "", {"fan": "on"}, actor="otto").shadow


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_staff_list_shadows_with_bounded_queries(client, staff, django_assert_max_num_queries):
    for n in range(5):
        device = make_device(f"dev-l{n}")
        services.set_desired(device, "", {"n": n}, actor="x")
        services.set_desired(device, "config", {"n": n}, actor="x")

    with django_assert_max_num_queries(8):
        response = client.get(LIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert "dev-l0" in html and "dev-l4" in html and "(classic)" in html and "config" in html


def test_search_and_device_link_filter_by_device_id(client, operator, shadow):
    other = make_device("zzz-other")
    services.set_desired(other, "", {"x": 1}, actor="x")
    client.force_login(operator)

    searched = client.get(LIST, {"q": "dev-adm"}).content.decode()
    linked = client.get(LIST, {"device__device_id": "zzz-other"}).content.decode()

    assert "dev-adm1" in searched and "zzz-other" not in searched
    assert "zzz-other" in linked and "dev-adm1" not in linked


def test_device_page_links_to_its_shadows(client, operator, shadow):
    client.force_login(operator)
    html = client.get(f"/admin/devices/device/{shadow.device.pk}/change/").content.decode()
    assert f"{LIST}?device__device_id=dev-adm1" in html


def test_shadow_page_shows_desired_reported_delta_and_history(
    client, staff, shadow, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = client.get(page(shadow))

    assert response.status_code == 200
    html = response.content.decode()
    columns = {
        name: json.loads(
            htmllib.unescape(re.search(rf'id="shadow-{name}">(.*?)</pre>', html, re.S).group(1))
        )
        for name in ("desired", "reported", "delta")
    }
    assert columns == {
        "desired": {"fan": "on"},
        "reported": {"fan": "off", "temp": 20},
        "delta": {"fan": "on"},
    }
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td>", html)
    assert rows == [("2", "Update"), ("1", "Update")]  # newest first
    assert ("desired-form" in html) == (staff.username == "otto")


def test_history_shows_at_most_fifty_versions(client, operator, shadow):
    for n in range(55):
        services.set_desired(shadow.device, "", {"n": n}, actor="x")
    client.force_login(operator)
    html = client.get(page(shadow)).content.decode()
    versions = [int(v) for v in re.findall(r"<tr><td>(\d+)</td>", html)]
    assert versions == list(range(57, 7, -1))


def test_operator_edits_desired_as_a_new_version_with_history_and_delta(client, operator, shadow):
    client.force_login(operator)
    outbox_before = OutboxMessage.objects.count()

    response = client.post(
        page(shadow), {"desired": '{"fan": "off", "mode": "eco"}', "version": shadow.version}
    )

    assert response.status_code == 302
    assert "Desired state saved as version 3." in texts(response)
    shadow.refresh_from_db()
    assert shadow.version == 3
    assert shadow.desired_state == {"fan": "off", "mode": "eco"}
    last = shadow.history.order_by("-version").first()
    assert last.actor == "otto" and last.change == {"desired": {"fan": "off", "mode": "eco"}}
    sent = list(OutboxMessage.objects.order_by("id")[outbox_before:])
    assert [m.topic.rsplit("/", 1)[-1] for m in sent] == ["accepted", "documents", "delta"]
    assert json.loads(bytes(sent[-1].payload))["state"] == {"mode": "eco"}


def test_removing_a_key_in_the_form_deletes_it(client, operator, shadow):
    services.set_desired(shadow.device, "", {"mode": {"a": 1, "b": 2}}, actor="x")
    client.force_login(operator)

    client.post(page(shadow), {"desired": '{"mode": {"a": 1}}', "version": 3})

    shadow.refresh_from_db()
    assert shadow.desired_state == {"mode": {"a": 1}}
    assert shadow.history.order_by("-version").first().change == {
        "desired": {"fan": None, "mode": {"b": None}}
    }


def test_stale_version_is_refused_with_a_message(client, operator, shadow):
    services.update(shadow.device, "", b'{"state":{"reported":{"temp":21}}}', actor="device")
    client.force_login(operator)

    response = client.post(page(shadow), {"desired": '{"fan": "auto"}', "version": 2})

    assert response.status_code == 200
    assert any(m.startswith("Version conflict") for m in texts(response))
    shadow.refresh_from_db()
    assert shadow.version == 3 and shadow.desired_state == {"fan": "on"}
    # The page now shows the current state to edit from.
    assert 'name="version" value="3"' in response.content.decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"fan": ', "Invalid JSON"),
        ("[1, 2]", "Desired state must be a JSON object."),
        ('{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}', "Refused: JSON contains too many levels"),
        ('{"a": [1, null]}', "Refused: State contains an invalid node"),
        ('{"big": "' + "x" * 9000 + '"}', "Refused: The payload exceeds the maximum size"),
    ],
)
def test_invalid_desired_is_refused_with_a_message_and_nothing_written(
    client, operator, shadow, text, message
):
    client.force_login(operator)
    before = (
        ShadowHistory.objects.count(),
        OutboxMessage.objects.count(),
        Shadow.objects.values().get(pk=shadow.pk),
    )

    response = client.post(page(shadow), {"desired": text, "version": shadow.version})

    assert response.status_code == 200
    assert any(m.startswith(message) for m in texts(response)), texts(response)
    after = (
        ShadowHistory.objects.count(),
        OutboxMessage.objects.count(),
        Shadow.objects.values().get(pk=shadow.pk),
    )
    assert after == before
    assert text in htmllib.unescape(response.content.decode())  # kept for correction


def test_viewer_cannot_post(client, viewer, shadow):
    client.force_login(viewer)
    response = client.post(page(shadow), {"desired": '{"fan": "x"}', "version": shadow.version})
    assert response.status_code == 403
    shadow.refresh_from_db()
    assert shadow.desired_state == {"fan": "on"}


def test_missing_shadow_redirects_with_a_message(client, operator, db):
    client.force_login(operator)
    response = client.get("/admin/shadows/shadow/00000000-0000-0000-0000-000000000000/change/")
    assert response.status_code == 302
