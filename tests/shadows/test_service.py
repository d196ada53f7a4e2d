"""The shadow service on PostgreSQL: versions, history, replies in the outbox, refusals."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from devices.choices import DeviceStatus
from fleetportal.models import OutboxMessage
from shadows import services
from shadows.document import ShadowNotFound, ThingNotFound, VersionConflict
from shadows.models import Shadow, ShadowHistory
from tests.conftest import make_device

pytestmark = pytest.mark.django_db

P = "$aws/things/dev-s1/shadow"
NAMED = "$aws/things/dev-s1/shadow/name/config"


@pytest.fixture
def device():
    return make_device("dev-s1")


def sent() -> list[tuple[str, dict]]:
    """The outbox in order, then cleared."""
    rows = list(OutboxMessage.objects.order_by("id"))
    OutboxMessage.objects.all().delete()
    return [(row.topic, orjson.loads(bytes(row.payload))) for row in rows]


def body(state: dict, **extra) -> bytes:
    return orjson.dumps({"state": state, **extra})


def test_first_update_creates_version_1_with_accepted_documents_and_delta(device):
    services.handle_request(
        "update", "dev-s1", "", body({"desired": {"on": True}}, clientToken="t1")
    )

    replies = sent()
    assert [topic for topic, _ in replies] == [
        f"{P}/update/accepted",
        f"{P}/update/documents",
        f"{P}/update/delta",
    ]
    accepted, documents, delta = (payload for _, payload in replies)
    assert accepted["state"] == {"desired": {"on": True}}
    assert accepted["version"] == 1 and accepted["clientToken"] == "t1"
    assert "previous" not in documents and documents["current"]["version"] == 1
    assert delta["state"] == {"on": True} and delta["clientToken"] == "t1"
    shadow = Shadow.objects.get(device=device, name="")
    assert shadow.version == 1 and shadow.desired_state == {"on": True}


def test_reported_matching_desired_sends_no_delta_and_bumps_version(device):
    services.set_desired(device, "", {"on": True}, actor="user:otto")
    sent()

    services.handle_request("update", "dev-s1", "", body({"reported": {"on": True}}))

    assert [topic for topic, _ in sent()] == [f"{P}/update/accepted", f"{P}/update/documents"]
    assert Shadow.objects.get(device=device).version == 2


def test_named_shadow_uses_its_own_topics_and_versions(device):
    services.update(device, "", body({"reported": {"a": 1}}), actor="x")
    sent()

    services.handle_request("update", "dev-s1", "config", body({"reported": {"b": 2}}))

    assert [topic for topic, _ in sent()] == [
        f"{NAMED}/update/accepted",
        f"{NAMED}/update/documents",
    ]
    assert Shadow.objects.get(device=device, name="config").version == 1


def test_history_records_every_accepted_version_with_actor_and_change(device):
    services.set_desired(device, "", {"on": True}, actor="user:otto")
    services.update(device, "", body({"reported": {"on": False}}), actor="device:dev-s1")

    history = list(ShadowHistory.objects.order_by("version"))
    assert [(h.version, h.actor) for h in history] == [(1, "user:otto"), (2, "device:dev-s1")]
    assert history[1].change == {"reported": {"on": False}}
    assert history[1].state == {"desired": {"on": True}, "reported": {"on": False}}


BAD_INPUTS = [
    (b"\xff\xfe", 415, None),
    (b"{not json", 400, None),
    (orjson.dumps({"clientToken": "c"}), 400, "c"),
    (orjson.dumps({"state": 5, "clientToken": "c"}), 400, "c"),
    (orjson.dumps({"state": {"desired": 1}, "clientToken": "c"}), 400, "c"),
    (orjson.dumps({"state": {"reported": [1]}, "clientToken": "c"}), 400, "c"),
    (orjson.dumps({"state": {"reported": {"a": [1, None]}}, "clientToken": "c"}), 400, "c"),
    (
        orjson.dumps({"state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}}),
        400,
        None,
    ),
    (orjson.dumps({"state": {"reported": {"big": "x" * 9000}}, "clientToken": "c"}), 413, "c"),
    (orjson.dumps({"state": {"reported": {}}, "clientToken": "x" * 65}), 400, None),
    (orjson.dumps({"state": {"reported": {}}, "version": "one", "clientToken": "c"}), 400, "c"),
    (orjson.dumps({"state": {"reported": {}}, "version": 7, "clientToken": "c"}), 409, "c"),
    (orjson.dumps({"state": {"delta": {"a": 1}}, "clientToken": "c"}), 400, "c"),
]


@pytest.mark.parametrize(("payload", "code", "token"), BAD_INPUTS)
def test_bad_update_is_rejected_with_aws_document_and_changes_nothing(device, payload, code, token):
    services.update(device, "", body({"reported": {"keep": 1}}), actor="x")
    sent()

    services.handle_request("update", "dev-s1", "", payload)

    [(topic, rejected)] = sent()
    assert topic == f"{P}/update/rejected"
    assert rejected["code"] == code and rejected["message"]
    assert rejected.get("clientToken") == token
    shadow = Shadow.objects.get(device=device)
    assert (shadow.version, shadow.reported_state) == (1, {"keep": 1})
    assert ShadowHistory.objects.count() == 1


def test_bad_shadow_name_is_rejected(device):
    services.handle_request("update", "dev-s1", "bad.name", body({}, clientToken="c"))

    [(topic, rejected)] = sent()
    assert topic == "$aws/things/dev-s1/shadow/name/bad.name/update/rejected"
    assert rejected["code"] == 400 and rejected["clientToken"] == "c"
    assert not Shadow.objects.exists()


@pytest.mark.parametrize("status", [None, DeviceStatus.DECOMMISSIONED])
def test_unknown_or_decommissioned_thing_is_404(status):
    if status:
        make_device("dev-s1", status=status)

    services.handle_request("update", "dev-s1", "", body({"reported": {}}, clientToken="c"))

    [(topic, rejected)] = sent()
    assert topic == f"{P}/update/rejected"
    assert rejected == {"code": 404, "message": "Thing not found", "clientToken": "c"} | {
        "timestamp": rejected["timestamp"]
    }
    assert not Shadow.objects.exists()
    with pytest.raises(ThingNotFound):
        services.get("dev-s1", "")


def test_get_replies_with_full_document_and_delta(device):
    services.set_desired(device, "", {"on": True}, actor="x")
    sent()

    services.handle_request("get", "dev-s1", "", orjson.dumps({"clientToken": "g"}))

    [(topic, document)] = sent()
    assert topic == f"{P}/get/accepted"
    assert document["state"] == {"desired": {"on": True}, "delta": {"on": True}}
    assert document["version"] == 1 and document["clientToken"] == "g"


def test_get_and_delete_of_missing_shadow_are_404_naming_it(device):
    services.handle_request("get", "dev-s1", "", b"")
    services.handle_request("delete", "dev-s1", "config", orjson.dumps({"clientToken": "d"}))

    (get_topic, get_doc), (delete_topic, delete_doc) = sent()
    assert get_topic == f"{P}/get/rejected"
    assert get_doc["message"] == "No shadow exists with name: 'dev-s1'"
    assert delete_topic == f"{NAMED}/delete/rejected"
    assert delete_doc["code"] == 404 and delete_doc["clientToken"] == "d"


def test_delete_keeps_the_version_and_a_new_update_continues_it(device):
    for n in range(3):
        services.update(device, "", body({"reported": {"n": n}}), actor="x")
    sent()

    services.handle_request("delete", "dev-s1", "", orjson.dumps({"clientToken": "d"}))
    [(topic, deleted)] = sent()
    assert topic == f"{P}/delete/accepted"
    assert deleted["version"] == 3 and deleted["clientToken"] == "d"
    with pytest.raises(ShadowNotFound):
        services.get(device, "")

    result = services.update(device, "", body({"reported": {"n": 9}}), actor="x")
    assert result.accepted["version"] == 4
    assert result.shadow.reported_state == {"n": 9}
    assert "previous" not in result.outcome.documents


def test_recreated_after_48_hours_restarts_at_version_1(device):
    services.update(device, "", body({"reported": {"n": 1}}), actor="x")
    services.delete(device, "", actor="x", now=timezone.now() - timedelta(hours=49))

    assert services.update(device, "", body({"reported": {}}), actor="x").accepted["version"] == 1


def test_redelivered_update_with_same_client_token_is_not_applied_twice(device):
    payload = body({"reported": {"count": 1}}, clientToken="once")
    services.handle_request("update", "dev-s1", "", payload)
    first = sent()[0]

    services.handle_request("update", "dev-s1", "", payload)

    # Answered again as the first time (the device may have lost that answer), not applied.
    assert sent() == [first]
    assert first[1]["version"] == 1 and first[1]["clientToken"] == "once"
    assert Shadow.objects.get(device=device).version == 1
    # The same token with another change is a new request (devices with a fixed token).
    services.handle_request(
        "update", "dev-s1", "", body({"reported": {"count": 2}}, clientToken="once")
    )
    assert Shadow.objects.get(device=device).version == 2


def test_updates_resent_after_a_lost_connection_are_answered_not_applied_again(device):
    updates = [body({"reported": {"step": n}}, clientToken=f"inflight-{n}") for n in range(3)]
    for payload in updates:
        services.handle_request("update", "dev-s1", "", payload)
    first_answers = [reply for reply in sent() if reply[0].endswith("/update/accepted")]

    for payload in updates:  # the resend: no DUP flag reaches the portal
        services.handle_request("update", "dev-s1", "", payload)

    assert sent() == first_answers
    assert [answer["version"] for _, answer in first_answers] == [1, 2, 3]
    assert Shadow.objects.get(device=device).version == 3
    services.handle_request("update", "dev-s1", "", body({"reported": {"step": 9}}))
    assert Shadow.objects.get(device=device).version == 4


def test_a_repeat_after_the_window_is_a_new_update(device):
    payload = body({"reported": {"on": True}}, clientToken="later")
    services.handle_request("update", "dev-s1", "", payload)
    later = timezone.now() + services.REPEAT_WINDOW + timedelta(seconds=1)

    services.handle_request("update", "dev-s1", "", payload, now=later)

    assert Shadow.objects.get(device=device).version == 2


def test_set_desired_with_stale_version_is_a_conflict(device):
    services.set_desired(device, "", {"on": True}, actor="x")

    with pytest.raises(VersionConflict):
        services.set_desired(device, "", {"on": False}, expected_version=0, actor="x")
    result = services.set_desired(device, "", {"on": False}, expected_version=1, actor="x")

    assert result.shadow.version == 2 and result.shadow.desired_state == {"on": False}


def test_prune_history_keeps_recent_versions(device, settings):
    settings.SHADOW_HISTORY_DAYS = 30
    services.update(
        device, "", body({"reported": {}}), actor="x", now=timezone.now() - timedelta(days=31)
    )
    services.update(device, "", body({"reported": {}}), actor="x")

    assert services.prune_history() == 1
    assert list(ShadowHistory.objects.values_list("version", flat=True)) == [2]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_accepted_change_is_pushed_to_the_device_group_after_commit():
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from fleetportal import live

    device = make_device("dev-s1")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(live.join)(channel, services.device_group(device.pk))
    try:
        services.set_desired(device, "", {"on": True}, actor="x")

        event = async_to_sync(layer.receive)(channel)
    finally:
        async_to_sync(live.leave)(channel, services.device_group(device.pk))
    assert event == {
        "type": "shadow.changed",
        "device_id": "dev-s1",
        "name": "",
        "version": 1,
        "live": True,
    }
