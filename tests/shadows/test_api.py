"""Integrator REST for shadows: read with delta, set desired (409 on a stale version), history."""

import threading

import pytest
from django.db import connection

from fleetportal.models import OutboxMessage
from shadows import services
from tests.conftest import make_device, make_user, token_client

URL = "/api/v1/devices/dev-a1/shadows/"
CLASSIC = URL + "~classic/"


@pytest.fixture
def device(db):
    return make_device("dev-a1")


def test_viewer_reads_classic_and_named_shadows_with_delta(device, viewer_api):
    services.set_desired(device, "", {"on": True}, actor="x")
    services.update(device, "config", b'{"state":{"reported":{"a":1}}}', actor="x")

    listing = viewer_api.get(URL)
    shadow = viewer_api.get(CLASSIC)

    assert listing.status_code == 200
    assert [(s["name"], s["version"]) for s in listing.json()] == [("~classic", 1), ("config", 1)]
    assert shadow.json()["desired"] == {"on": True}
    assert shadow.json()["delta"] == {"on": True}
    assert viewer_api.get(URL + "config/").json()["reported"] == {"a": 1}


def test_missing_shadow_and_unknown_device_are_404(device, viewer_api):
    assert viewer_api.get(CLASSIC).json()["message"] == "No shadow exists with name: 'dev-a1'"
    assert viewer_api.get("/api/v1/devices/nobody/shadows/").status_code == 404


def test_operator_sets_desired_and_the_device_is_told(device, operator_api):
    response = operator_api.patch(CLASSIC, {"desired": {"fan": "high"}}, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 1 and response.json()["delta"] == {"fan": "high"}
    topics = list(OutboxMessage.objects.order_by("id").values_list("topic", flat=True))
    assert topics[-1] == "$aws/things/dev-a1/shadow/update/delta"


def test_viewer_cannot_set_desired(device, viewer_api):
    assert viewer_api.patch(CLASSIC, {"desired": {"a": 1}}, format="json").status_code == 403


def test_stale_expected_version_is_409_and_invalid_desired_400(device, operator_api):
    services.set_desired(device, "", {"a": 1}, actor="x")

    stale = operator_api.patch(CLASSIC, {"desired": {"a": 2}, "version": 0}, format="json")
    invalid = operator_api.post(CLASSIC, {"desired": {"a": [1, None]}}, format="json")

    assert stale.status_code == 409 and stale.json()["message"] == "Version conflict"
    assert invalid.status_code == 400
    assert services.find(device, "").desired_state == {"a": 1}


def test_history_lists_versions_newest_first_with_changes(device, viewer_api):
    services.set_desired(device, "", {"a": 1}, actor="user:otto")
    services.update(device, "", b'{"state":{"reported":{"a":1}}}', actor="device:dev-a1")

    results = viewer_api.get(CLASSIC + "history/").json()["results"]

    assert [(r["version"], r["actor"], r["change"]) for r in results] == [
        (2, "device:dev-a1", {"reported": {"a": 1}}),
        (1, "user:otto", {"desired": {"a": 1}}),
    ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_integrators_with_the_same_expected_version_exactly_one_wins():
    device = make_device("dev-a1")
    services.set_desired(device, "", {"a": 0}, actor="x")
    clients = [token_client(make_user(f"int{n}", "Fleet operator")) for n in range(2)]
    barrier = threading.Barrier(2)
    statuses = []

    def set_desired(client, value):
        barrier.wait()
        try:
            response = client.patch(CLASSIC, {"desired": {"a": value}, "version": 1}, format="json")
            statuses.append((response.status_code, value))
        finally:
            connection.close()

    threads = [threading.Thread(target=set_desired, args=(c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(status for status, _ in statuses) == [200, 409]
    [winner] = [value for status, value in statuses if status == 200]
    shadow = services.find("dev-a1", "")
    assert (shadow.version, shadow.desired_state) == (2, {"a": winner})
