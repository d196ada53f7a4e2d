"""Creating, starting, approving and canceling rollouts through the service layer."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from devices.choices import DeviceStatus
from firmware.rollouts import services
from firmware.rollouts.choices import DeviceOutcome, RolloutStatus
from firmware.rollouts.models import Rollout, RolloutDevice, RolloutEvent, Wave
from tests.firmware.helpers import make_version
from tests.firmware.rollouts.helpers import fields, fleet, group_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def firmware():
    make_version("1.0.0")
    return make_version("2.0.0", security_version=2)


@pytest.fixture
def sensors():
    devices = fleet(10)
    group_of(devices)
    return devices


def refused(firmware, field: str, **extra) -> str:
    with pytest.raises(ValidationError) as caught:
        services.create_rollout(fields(firmware, **extra), actor="otto")
    assert Rollout.objects.count() == 0 and Wave.objects.count() == 0
    assert field in caught.value.message_dict, caught.value.message_dict
    return " ".join(caught.value.message_dict[field])


BAD = [
    ("waves", {"waves": [{"selector": "percent", "percent": 150}]}, "percent"),
    ("waves", {"waves": [{"selector": "count", "count": 11}]}, "the targets have 10"),
    ("waves", {"waves": [{"selector": "count", "count": 0}]}, "empty wave"),
    ("waves", {"waves": []}, "at least one wave"),
    (
        "waves",
        {"waves": [{"selector": "percent", "percent": 100}, {"selector": "count", "count": 1}]},
        "empty",
    ),
    ("failure_policy", {"failure_policy": {"threshold_percent": 0}}, "0.01"),
    ("failure_policy", {"failure_policy": {"threshold_percent": 101}}, "0.01"),
    ("failure_policy", {"failure_policy": {"threshold_count": 0}}, "threshold_count"),
    ("deadlines", {"deadlines": {"start_minutes": 0}}, "start_minutes"),
    ("deadlines", {"deadlines": {"finish_minutes": 10081}}, "finish_minutes"),
    ("window", {"window": {"timezone": "Mars/Olympus", "cron": ""}}, "Mars/Olympus"),
    ("window", {"window": {"timezone": "UTC", "fallback_timezone": "UTC"}}, "device_local"),
    (
        "window",
        {"window": {"timezone": "device_local", "fallback_timezone": "Mars/Base"}},
        "fallback_timezone",
    ),
    ("health", {"health": {"bounds": {"field": "nope", "op": "eq", "value": 1}}}, "bounds"),
    ("start_at", {"start_at": "2001-01-01T00:00:00Z"}, "future"),
    ("rollback", {"kind": "rollback"}, "needs a reason"),
]


@pytest.mark.parametrize(
    ("field", "extra", "words"), BAD, ids=[b[0] + str(i) for i, b in enumerate(BAD)]
)
def test_refuses_bad_input_naming_the_field_and_creates_nothing(
    firmware, sensors, field, extra, words
):
    assert words in refused(firmware, field, **extra)


def test_a_downgrade_needs_the_rollback_kind_and_is_recorded(sensors):
    old = make_version("1.0.0")
    make_version("2.0.0")
    from devices.models import Device

    Device.objects.update(firmware_version="2.0.0")
    assert "rollback" in refused(old, "kind")
    rollout = services.create_rollout(
        fields(old, kind="rollback", rollback={"reason": "2.0.0 drains batteries"}), actor="otto"
    )
    assert rollout.kind == "rollback" and rollout.rollback_reason == "2.0.0 drains batteries"
    event = RolloutEvent.objects.get(rollout=rollout, kind="created")
    assert event.actor == "otto" and event.details == {"rollout_kind": "rollback"}


def test_start_assigns_every_included_device_to_its_wave(firmware, sensors):
    rollout = services.create_rollout(fields(firmware), actor="otto")
    rollout = services.request_start(rollout, actor="otto")
    assert rollout.status == RolloutStatus.RUNNING
    counts = dict(Wave.objects.filter(rollout=rollout).values_list("number", "device_count"))
    assert counts == {1: 2, 2: 4, 3: 4}  # 2, then 50 % of 8, then the 4 left
    rows = RolloutDevice.objects.filter(rollout=rollout)
    assert rows.count() == 10
    assert set(rows.values_list("outcome", flat=True)) == {DeviceOutcome.ASSIGNED}
    assert set(rows.values_list("time_zone", flat=True)) == {"UTC"}
    ordered = list(rows.order_by("position", "device_id").values_list("wave__number", flat=True))
    assert ordered == sorted(ordered)  # waves take devices in position order


def test_start_leaves_the_planner_knowing_each_wave_size(firmware, sensors):
    """Without fresh statistics a new wave looks like a few rows and the tick's follow UPDATE
    joins it by a nested loop: minutes per tick at 100,000 devices (bench/rollouts.py)."""
    rollout = services.request_start(
        services.create_rollout(fields(firmware), actor="otto"), actor="otto"
    )
    wave = Wave.objects.get(rollout=rollout, number=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM firmware_rolloutdevice WHERE wave_id = %s",
            [wave.pk],
        )
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    assert plan[0]["Plan"]["Plan Rows"] == wave.device_count == 4


def test_start_at_ahead_schedules(firmware, sensors):
    later = (timezone.now() + timedelta(hours=2)).isoformat()
    rollout = services.create_rollout(fields(firmware, start_at=later), actor="otto")
    assert services.request_start(rollout, actor="otto").status == RolloutStatus.SCHEDULED
    assert RolloutDevice.objects.filter(rollout=rollout).count() == 10


def test_a_device_in_another_active_rollout_is_left_out(firmware, sensors):
    first = services.create_rollout(
        fields(firmware, rollout_id="first", groups=(), targets={"devices": ["dev-000003"]},
               waves=[{"selector": "percent", "percent": 100}]),
        actor="otto",
    )  # fmt: skip
    services.request_start(first, actor="otto")
    second = services.create_rollout(fields(firmware, rollout_id="second"), actor="otto")
    services.request_start(second, actor="otto")
    devices = set(
        RolloutDevice.objects.filter(rollout=second).values_list("device__device_id", flat=True)
    )
    assert "dev-000003" not in devices and len(devices) == 9


def test_the_creator_cannot_approve_and_a_second_person_starts_it(firmware, sensors):
    rollout = services.create_rollout(fields(firmware, approval_required=True), actor="otto")
    rollout = services.request_start(rollout, actor="otto")
    assert rollout.status == RolloutStatus.AWAITING_APPROVAL
    assert not RolloutDevice.objects.filter(rollout=rollout).exists()
    with pytest.raises(services.SelfApproval, match="someone else"):
        services.approve(rollout, actor="otto")
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.AWAITING_APPROVAL and rollout.approved_by == ""
    rollout = services.approve(rollout, actor="ada")
    assert rollout.status == RolloutStatus.RUNNING and rollout.approved_by == "ada"
    kinds = list(RolloutEvent.objects.filter(rollout=rollout).values_list("kind", "actor"))
    assert ("approved", "ada") in kinds


def test_approval_roles_setting_forces_approval(firmware, sensors, settings):
    settings.ROLLOUT_APPROVAL_ROLES = ["Fleet operator"]
    rollout = services.create_rollout(fields(firmware), actor="otto", roles=["Fleet operator"])
    assert rollout.approval_required


def test_cancel_frees_the_devices_of_a_scheduled_rollout(firmware, sensors):
    later = (timezone.now() + timedelta(hours=2)).isoformat()
    rollout = services.create_rollout(fields(firmware, start_at=later), actor="otto")
    rollout = services.request_start(rollout, actor="otto")
    rollout = services.cancel(rollout, actor="otto", reason="wrong build")
    assert rollout.status == RolloutStatus.CANCELED
    assert not RolloutDevice.objects.filter(active=True).exists()


def test_a_running_rollout_cannot_be_canceled_or_started_again(firmware, sensors):
    rollout = services.request_start(
        services.create_rollout(fields(firmware), actor="o"), actor="o"
    )
    with pytest.raises(services.WrongState):
        services.cancel(rollout, actor="o", reason="x")
    with pytest.raises(services.WrongState):
        services.request_start(rollout, actor="o")


def test_a_wave_left_empty_stops_the_start_and_writes_nothing(firmware, sensors):
    waves = [
        {"selector": "filter", "filter": {"field": "device_type", "op": "eq", "value": "camera"}},
        {"selector": "percent", "percent": 100},
    ]
    rollout = services.create_rollout(fields(firmware, waves=waves), actor="o")
    with pytest.raises(ValidationError, match="no device left"):
        services.request_start(rollout, actor="o")
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.DRAFT
    assert not RolloutDevice.objects.exists()


def test_decommissioned_and_offline_targets_are_left_out(firmware, sensors):
    from devices.models import Device

    Device.objects.filter(device_id="dev-000001").update(status=DeviceStatus.DECOMMISSIONED)
    Device.objects.filter(device_id="dev-000002").update(last_seen=None)
    rollout = services.create_rollout(
        fields(firmware, waves=[{"selector": "percent", "percent": 100}]), actor="o"
    )
    services.request_start(rollout, actor="o")
    assert RolloutDevice.objects.filter(rollout=rollout).count() == 8


def test_device_local_windows_give_each_device_its_zone_or_the_rollouts_fallback(firmware):
    devices = fleet(3)
    devices[0].metadata = {"timezone": "Asia/Tokyo"}
    devices[1].metadata = {"timezone": "Not/AZone"}
    for device in devices[:2]:
        device.save(update_fields=["metadata"])
    group_of(devices)
    window = {
        "cron": "cron(0 2 * * ? *)",
        "duration_in_minutes": 60,
        "timezone": "device_local",
        "fallback_timezone": "Europe/Berlin",
    }
    rollout = services.create_rollout(
        fields(firmware, waves=[{"selector": "percent", "percent": 100}], window=window),
        actor="otto",
    )
    services.request_start(rollout, actor="otto")
    zones = dict(
        RolloutDevice.objects.filter(rollout=rollout).values_list("device__device_id", "time_zone")
    )
    assert zones == {
        "dev-000000": "Asia/Tokyo",
        "dev-000001": "Europe/Berlin",  # an unknown zone: the fallback
        "dev-000002": "Europe/Berlin",  # none given: the fallback
    }
