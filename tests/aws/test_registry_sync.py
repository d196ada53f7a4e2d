"""Registry sync, portal → AWS, against moto in server mode: things, thing types and groups,
idempotency, decommissioning, a thing deleted behind the portal's back, and faults."""

from datetime import timedelta

import pytest
from django.utils import timezone

from aws_gateway import client, registry, sync_state, tasks
from aws_gateway.choices import THING_RECREATED, SyncState
from aws_gateway.models import ThingSync
from devices import groups, services
from devices.choices import DeviceStatus
from devices.models import DeviceGroup, DeviceTypeGateway
from tests.aws.helpers import Injection, aws_device, injected, throttled
from tests.conftest import make_device

pytestmark = pytest.mark.django_db


def thing(name):
    return client.client("iot").describe_thing(thingName=name)


def thing_groups(name):
    answer = client.client("iot").list_thing_groups_for_thing(thingName=name)
    return sorted(group["groupName"] for group in answer["thingGroups"])


def test_a_device_on_aws_becomes_a_thing_of_its_type_with_its_fields(aws):
    device = aws_device("pump-7", device_type="water pump", serial_number="SN 42", model="P-7")

    assert ThingSync.objects.get(device=device).state == SyncState.PENDING
    assert registry.sync(device.pk) == SyncState.SYNCED

    described = thing("pump-7")
    assert described["thingTypeName"] == "water_pump"
    assert described["attributes"] == {
        "serialNumber": "SN_42",
        "model": "P-7",
        "status": "registered",
    }
    row = ThingSync.objects.get(device=device)
    assert (row.state, row.thing_arn, row.last_error) == (
        SyncState.SYNCED,
        described["thingArn"],
        "",
    )


def test_a_device_on_mosquitto_never_reaches_aws(aws):
    device = make_device("local-1")

    assert device.gateway == "mosquitto"
    assert not ThingSync.objects.filter(device=device).exists()
    assert client.client("iot").list_things()["things"] == []


def test_syncing_twice_leaves_one_thing_unchanged(aws):
    device = aws_device("pump-8")
    registry.sync(device.pk)
    version = thing("pump-8")["version"]

    sync_state.mark_pending([device.pk])
    assert registry.sync(device.pk) == SyncState.SYNCED

    assert [t["thingName"] for t in client.client("iot").list_things()["things"]] == ["pump-8"]
    assert thing("pump-8")["version"] == version
    # Nothing changed since: a third sync is not even attempted.
    assert registry.sync(device.pk) == ""


def test_a_change_in_the_portal_reaches_the_thing(aws, operator):
    device = aws_device("pump-9", firmware_version="1.0.0", model="X")
    registry.sync(device.pk)

    services.update_device(device, {"firmware_version": "1.1.0", "model": ""}, actor="ops")
    registry.sync(device.pk)

    attributes = thing("pump-9")["attributes"]
    assert attributes["firmwareVersion"] == "1.1.0"
    assert "model" not in attributes


def test_the_static_group_is_the_thing_group_and_a_move_moves_it(aws):
    north, south = (
        DeviceGroup.objects.create(name="site north"),
        DeviceGroup.objects.create(name="south"),
    )
    device = aws_device("pump-10", group=north)
    registry.sync(device.pk)
    assert thing_groups("pump-10") == ["site_north"]

    groups.assign_devices([device], south, actor="ops")
    registry.sync(device.pk)

    assert thing_groups("pump-10") == ["south"]


def test_a_thing_group_the_portal_does_not_know_is_left_alone(aws):
    iot = client.client("iot")
    iot.create_thing_group(thingGroupName="billing-eu")
    device = aws_device("pump-11")
    registry.sync(device.pk)
    iot.add_thing_to_thing_group(thingGroupName="billing-eu", thingName="pump-11")

    groups.assign_devices([device], DeviceGroup.objects.create(name="north"), actor="ops")
    registry.sync(device.pk)

    assert thing_groups("pump-11") == ["billing-eu", "north"]


def test_a_change_while_a_sync_runs_is_not_lost(aws):
    device = aws_device("pump-12")
    row = ThingSync.objects.get(device=device)
    # Another change lands after this sync started (it started from generation 1).
    sync_state.mark_pending([device.pk])

    sync_state.record_synced(row, started=row.generation)

    assert ThingSync.objects.get(device=device).state == SyncState.PENDING


@pytest.mark.parametrize("mode", ["delete", "disable"])
def test_decommissioning_deletes_or_disables_the_thing_as_configured(aws, settings, mode):
    settings.AWS_DECOMMISSION = mode
    device = aws_device("pump-13")
    registry.sync(device.pk)

    services.transition_device(device, DeviceStatus.DECOMMISSIONED, actor="ops", reason="scrap")
    assert registry.sync(device.pk) == SyncState.REMOVED

    things = client.client("iot").list_things()["things"]
    if mode == "delete":
        assert things == []
    else:
        assert things[0]["attributes"]["status"] == "decommissioned"


def test_a_thing_deleted_behind_the_portals_back_is_created_again_and_said_so(aws):
    device = aws_device("pump-14")
    registry.sync(device.pk)
    client.client("iot").delete_thing(thingName="pump-14")

    sync_state.mark_pending([device.pk])
    assert registry.sync(device.pk) == SyncState.SYNCED

    assert thing("pump-14")["thingName"] == "pump-14"
    assert "deleted on AWS" in ThingSync.objects.get(device=device).note
    assert device.events.filter(event_type=THING_RECREATED).count() == 1


def test_new_devices_take_their_types_default_gateway_unless_told(db):
    DeviceTypeGateway.objects.create(device_type="camera", gateway="aws")

    assert make_device("cam-1", device_type="camera").gateway == "aws"
    assert make_device("cam-2", device_type="camera", gateway="mosquitto").gateway == "mosquitto"
    assert make_device("sensor-1", device_type="sensor").gateway == "mosquitto"


# -- faults ---------------------------------------------------------------------------------------


def test_a_throttled_call_is_retried_with_backoff_and_the_sync_succeeds(aws):
    """moto cannot throttle: AWS's 429 ThrottlingException is injected at botocore's transport
    (before-send), inside botocore's own retry loop, for the first call only."""
    device = aws_device("pump-20")

    with injected("iot", "DescribeThing", Injection([throttled])) as injection:
        assert registry.sync(device.pk) == SyncState.SYNCED

    assert injection.calls == 2  # throttled once, then retried by botocore
    assert thing("pump-20")["thingName"] == "pump-20"


def test_throttled_through_every_retry_shows_on_the_device_and_is_tried_again_later(
    aws, admin_client
):
    device = aws_device("pump-21")

    with injected("iot", "DescribeThing", Injection([], forever=throttled)):
        assert registry.sync(device.pk) == SyncState.FAILED

    row = ThingSync.objects.get(device=device)
    assert "throttled" in row.last_error
    assert row.attempts == 1 and row.next_attempt_at > timezone.now()
    page = admin_client.get(f"/admin/devices/device/{device.pk}/change/")
    assert "AWS throttled the calls" in page.content.decode()

    # Not before its time; then beat's sweep syncs it.
    assert tasks.sync_due_things() == 0
    ThingSync.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.sync_due_things() == 1
    row.refresh_from_db()
    assert (row.state, row.last_error, row.attempts) == (SyncState.SYNCED, "", 0)


def test_missing_credentials_fail_visibly_and_lose_nothing(aws, monkeypatch, tmp_path):
    device = aws_device("pump-22")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client.forget_clients()

    assert registry.sync(device.pk) == SyncState.FAILED
    assert ThingSync.objects.get(device=device).last_error.startswith("No AWS credentials")

    monkeypatch.undo()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    client.forget_clients()
    assert registry.sync(device.pk) == SyncState.SYNCED
