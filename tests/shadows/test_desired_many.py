"""shadows.batch.set_desired_many: one desired patch into many devices' shadows in bulk writes,
with the same results, replies and refusals as services.set_desired one by one."""

import orjson
import pytest

from fleetportal.models import OutboxMessage
from shadows import batch, services
from shadows.models import Shadow, ShadowHistory
from tests.conftest import make_device

pytestmark = pytest.mark.django_db


def replies(device_id: str) -> list[str]:
    prefix = f"$aws/things/{device_id}/shadow/name/config/update/"
    return [
        row.topic.removeprefix(prefix)
        for row in OutboxMessage.objects.filter(device_id=device_id).order_by("id")
    ]


def test_new_and_existing_shadows_get_the_patch_with_versions_history_and_replies():
    fresh, existing = make_device("fresh"), make_device("existing")
    services.set_desired(existing, "config", {"a": 1, "b": 2}, actor="otto")
    OutboxMessage.objects.all().delete()

    refused = batch.set_desired_many(
        "config", [(fresh, {"a": 5}), (existing, {"b": None, "c": 3})], actor="config:otto"
    )

    assert refused == {}
    new = Shadow.objects.get(device=fresh, name="config")
    old = Shadow.objects.get(device=existing, name="config")
    assert (new.version, new.live, new.desired_state) == (1, True, {"a": 5})
    assert (old.version, old.desired_state) == (2, {"a": 1, "c": 3})
    assert new.metadata["desired"]["a"]["timestamp"] > 0
    assert replies("fresh") == ["accepted", "documents", "delta"]
    delta = orjson.loads(
        bytes(
            OutboxMessage.objects.get(
                topic__endswith="existing/shadow/name/config/update/delta"
            ).payload
        )
    )
    assert delta["state"] == {"a": 1, "c": 3} and delta["version"] == 2
    history = ShadowHistory.objects.get(shadow=old, version=2)
    assert history.actor == "config:otto" and history.change == {"desired": {"b": None, "c": 3}}


def test_a_refused_patch_leaves_that_device_unchanged_and_the_others_go_ahead():
    small, full = make_device("small"), make_device("full")
    services.update(full, "config", {"state": {"reported": {"blob": "x" * 8000}}}, actor="device")
    version = Shadow.objects.get(device=full, name="config").version

    refused = batch.set_desired_many(
        "config", [(small, {"k": "y" * 300}), (full, {"k": "y" * 300})], actor="otto"
    )

    assert set(refused) == {full.pk} and refused[full.pk].code == 413
    assert Shadow.objects.get(device=full, name="config").version == version
    assert Shadow.objects.get(device=small, name="config").desired_state == {"k": "y" * 300}


def test_a_refused_first_patch_leaves_no_shadow():
    device = make_device("d1")
    refused = batch.set_desired_many("config", [(device, {"a": [1, None]})], actor="otto")
    assert device.pk in refused
    assert not Shadow.objects.filter(device=device).exists()


def test_a_shadow_deleted_recently_carries_on_from_its_version():
    device = make_device("d1")
    for n in range(3):
        services.set_desired(device, "config", {"n": n}, actor="otto")
    services.delete(device, "config", actor="otto")

    batch.set_desired_many("config", [(device, {"n": 9})], actor="otto")

    row = Shadow.objects.get(device=device, name="config")
    assert (row.live, row.version, row.desired_state) == (True, 4, {"n": 9})
