"""The dry run: what the preview promises is what the start does, in constant queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device
from firmware.models import FirmwareVersion
from firmware.rollouts import services
from firmware.rollouts.models import RolloutDevice
from tests.firmware.helpers import make_version
from tests.firmware.rollouts.helpers import fields, fleet, group_of

pytestmark = pytest.mark.django_db

WAVES = [
    {"selector": "count", "count": 3},
    {"selector": "filter", "filter": {"field": "hardware_version", "op": "eq", "value": "b"}},
    {"selector": "percent", "percent": 50},
]


def _rollout(count: int, rollout_id: str = "ro-1"):
    firmware = FirmwareVersion.objects.filter(version="2.0.0").first() or make_version(
        "2.0.0", security_version=1
    )
    devices = fleet(count, prefix=rollout_id, hardware_version="a")
    Device.objects.filter(pk__in=[d.pk for d in devices[::4]]).update(hardware_version="b")
    Device.objects.filter(pk=devices[1].pk).update(firmware_version="2.0.0")
    Device.objects.filter(pk=devices[2].pk).update(device_type="camera")
    group_of(devices, name=rollout_id)
    extra = {"rollout_id": rollout_id, "groups": [rollout_id], "waves": WAVES}
    return services.create_rollout(fields(firmware, **extra), actor="o")


def test_preview_and_start_agree_device_for_device():
    rollout = _rollout(40)
    seen = services.preview(rollout, now=timezone.now())
    assert seen["excluded"]["already_on_version"]["first_devices"] == ["ro-1-000001"]
    assert seen["excluded"]["incompatible"]["first_devices"] == ["ro-1-000002"]
    assert seen["excluded"]["no_wave"]["count"] > 0  # the last wave takes 50 % of the rest
    services.request_start(rollout, actor="o")
    started = {
        number: list(
            RolloutDevice.objects.filter(rollout=rollout, wave__number=number)
            .order_by("position", "device_id")
            .values_list("device__device_id", flat=True)
        )
        for number in (1, 2, 3)
    }
    for wave in seen["waves"]:
        assert wave["device_count"] == len(started[wave["number"]])
        assert wave["first_devices"] == started[wave["number"]][:20]
    assert seen["included"] == RolloutDevice.objects.filter(rollout=rollout).count()


def test_the_filter_wave_takes_only_its_matches():
    rollout = _rollout(40)
    services.request_start(rollout, actor="o")
    hardware = set(
        RolloutDevice.objects.filter(rollout=rollout, wave__number=2).values_list(
            "device__hardware_version", flat=True
        )
    )
    assert hardware == {"b"}


def test_timeline_lists_each_wave_and_zone():
    rollout = _rollout(20)
    rollout.rate_config = {"maximum_per_minute": 2}
    timeline = services.preview(rollout, now=timezone.now())["timeline"]
    assert [entry["wave"] for entry in timeline] == [1, 2, 3]
    assert timeline[0]["release_minutes"] == 2  # 3 devices at 2 a minute
    assert timeline[1]["earliest_start"] > timeline[0]["earliest_start"]
    assert timeline[0]["zones"][0]["time_zone"] == "UTC"


def _queries(action, count: int, rollout_id: str) -> int:
    rollout = _rollout(count, rollout_id)
    with CaptureQueriesContext(connection) as captured:
        action(rollout)
    return len(captured)


@pytest.mark.parametrize(
    "action",
    [
        lambda r: services.preview(r, now=timezone.now()),
        lambda r: services.request_start(r, actor="o"),
    ],
    ids=["preview", "start"],
)
def test_queries_do_not_grow_with_the_devices(action):
    small = _queries(action, 10, "small")
    big = _queries(action, 300, "big")
    assert small == big
