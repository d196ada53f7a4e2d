"""/api/v1/rollouts/: roles, refusals naming the field, actions through the state machine."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from firmware.rollouts.models import Rollout, RolloutDevice, RolloutEvent
from tests.conftest import make_user, token_client
from tests.firmware.helpers import make_version
from tests.firmware.rollouts.helpers import fleet, group_of

pytestmark = pytest.mark.django_db
URL = "/api/v1/rollouts/"


@pytest.fixture
def body():
    firmware = make_version("2.0.0")
    group_of(fleet(12))
    return {
        "rollout_id": "spring",
        "firmware": str(firmware.pk),
        "targets": {"groups": ["all-sensors"]},
        "waves": [{"selector": "count", "count": 2}, {"selector": "percent", "percent": 100}],
        "failure_policy": {"threshold_percent": 10, "min_finished": 2, "action": "pause"},
    }


def test_operator_creates_starts_pauses_and_everything_is_on_the_timeline(operator_api, body):
    created = operator_api.post(URL, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "draft"
    started = operator_api.post(f"{URL}spring/start/", {}, format="json")
    assert started.status_code == 200 and started.json()["status"] == "running"
    waves = started.json()["waves"]
    assert [w["device_count"] for w in waves] == [2, 10]
    assert waves[1]["outcomes"]["assigned"] == 10
    paused = operator_api.post(f"{URL}spring/pause/", {"reason": "look"}, format="json")
    assert paused.json()["status"] == "paused"
    events = [(e["kind"], e["to_status"], e["actor"]) for e in paused.json()["events"]]
    assert events[-1] == ("status", "paused", "token:otto")


def test_viewer_reads_but_cannot_create_or_start(viewer_api, operator_api, body):
    assert viewer_api.post(URL, body, format="json").status_code == 403
    operator_api.post(URL, body, format="json")
    assert viewer_api.get(f"{URL}spring/").status_code == 200
    assert viewer_api.post(f"{URL}spring/start/", {}, format="json").status_code == 403
    assert viewer_api.get(f"{URL}spring/preview/").status_code == 200


def test_bad_waves_are_400_naming_the_field_and_nothing_is_created(operator_api, body):
    body["waves"] = [{"selector": "percent", "percent": 150}]
    response = operator_api.post(URL, body, format="json")
    assert response.status_code == 400 and "waves" in response.json()
    assert not Rollout.objects.exists()


def test_the_creator_cannot_approve_over_the_api(operator_api, admin_api, body):
    body["approval_required"] = True
    operator_api.post(URL, body, format="json")
    assert operator_api.post(f"{URL}spring/start/", {}, format="json").json()["status"] == (
        "awaiting_approval"
    )
    refused = operator_api.post(f"{URL}spring/approve/", {}, format="json")
    assert refused.status_code == 403 and "someone else" in refused.json()["approved_by"][0]
    approved = admin_api.post(f"{URL}spring/approve/", {}, format="json")
    assert approved.status_code == 200 and approved.json()["approved_by"] == "token:ada"
    assert RolloutEvent.objects.filter(kind="approved", actor="token:ada").exists()


def test_an_action_the_state_does_not_allow_is_409(operator_api, body):
    operator_api.post(URL, body, format="json")
    response = operator_api.post(f"{URL}spring/resume/", {}, format="json")
    assert response.status_code == 409 and "draft" in response.json()["status"][0]


def test_devices_are_paginated_and_filtered(operator_api, body):
    operator_api.post(URL, body, format="json")
    operator_api.post(f"{URL}spring/start/", {}, format="json")
    page = operator_api.get(f"{URL}spring/devices/?wave=1&page_size=5").json()
    assert len(page["results"]) == 2 and {d["wave"] for d in page["results"]} == {1}
    failed = operator_api.get(f"{URL}spring/devices/?outcome=failed").json()
    assert failed["results"] == []


def test_describe_queries_do_not_grow_with_devices(operator_api, body):
    operator_api.post(URL, body, format="json")
    operator_api.post(f"{URL}spring/start/", {}, format="json")
    with CaptureQueriesContext(connection) as small:
        operator_api.get(f"{URL}spring/")
    group_of(fleet(50, prefix="more"), name="more")
    body.update(rollout_id="summer", targets={"groups": ["more"]})
    operator_api.post(URL, body, format="json")
    operator_api.post(f"{URL}summer/start/", {}, format="json")
    assert RolloutDevice.objects.filter(rollout__rollout_id="summer").count() == 50
    with CaptureQueriesContext(connection) as big:
        operator_api.get(f"{URL}summer/")
    assert len(small) == len(big)


def test_a_user_without_approve_permission_cannot_approve(operator_api, body):
    body["approval_required"] = True
    operator_api.post(URL, body, format="json")
    operator_api.post(f"{URL}spring/start/", {}, format="json")
    viewer = token_client(make_user("val", "Fleet viewer"))
    assert viewer.post(f"{URL}spring/approve/", {}, format="json").status_code == 403


def test_a_downgrade_without_the_rollback_kind_is_400_naming_the_field(operator_api, body):
    from devices.models import Device

    make_version("3.0.0")
    Device.objects.update(firmware_version="3.0.0")  # 2.0.0 is older than what they run
    refused = operator_api.post(URL, body, format="json")
    assert refused.status_code == 400 and "rollback" in " ".join(refused.json()["kind"])
    assert not Rollout.objects.exists()
    body.update(kind="rollback")  # the kind without its reason
    refused = operator_api.post(URL, body, format="json")
    assert refused.status_code == 400 and "reason" in str(refused.json()["rollback"])
    body.update(rollback={"reason": "3.0.0 drains batteries"})
    created = operator_api.post(URL, body, format="json")
    assert created.status_code == 201 and created.json()["kind"] == "rollback"
