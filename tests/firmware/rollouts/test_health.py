"""Verified success (health.verify) and the promotion comparison (health.compare), on the real
PostgreSQL with reported values written through the shadow service."""

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device
from firmware.models import FirmwareVersion, JobExecution
from firmware.rollouts import health
from firmware.rollouts.choices import DeviceOutcome, Failure, WaveSelector
from firmware.rollouts.models import Rollout, RolloutDevice, Wave
from fleetportal.bridge import record
from shadows import services as shadows
from tests.conftest import make_device
from tests.firmware.helpers import T0, make_job, make_version

pytestmark = pytest.mark.django_db

BATTERY_ABOVE_10 = {"field": "reported.battery", "op": "gt", "value": 10}
_positions = itertools.count(1)


def at(minutes: float) -> object:
    return T0 + timedelta(minutes=minutes)


def make_wave(*, bounds=None, online_minutes=15, soak_minutes=60, margin=5) -> Wave:
    rollout = Rollout.objects.create(
        rollout_id=f"rollout-{next(_positions)}",
        firmware=FirmwareVersion.objects.filter(version="2.0.0").first() or make_version(),
        health_bounds=bounds,
        health_online_minutes=online_minutes,
        promotion_margin_percent=margin,
    )
    return Wave.objects.create(
        rollout=rollout, number=1, selector=WaveSelector.COUNT, count=10, soak_minutes=soak_minutes
    )


def enrol(wave: Wave, device: Device, outcome=DeviceOutcome.REPORTED, **fields) -> RolloutDevice:
    if outcome == DeviceOutcome.REPORTED:
        fields.setdefault("reported_at", T0)
    return RolloutDevice.objects.create(
        rollout=wave.rollout,
        device=device,
        wave=wave,
        position=next(_positions),
        outcome=outcome,
        **fields,
    )


@pytest.fixture(autouse=True)
def bridge_caught_up(_own_message_record):
    """A bridge running with nothing waiting: the record of messages reaches now (in this
    test's own record, hence after conftest made it)."""
    record.Reporter("bridge").caught_up()


def seen(device: Device, minutes: float | None) -> None:
    last_seen = None if minutes is None else at(minutes)
    Device.objects.filter(pk=device.pk).update(last_seen=last_seen)


def report(device: Device, **reported) -> None:
    shadows.update(device, "", {"state": {"reported": reported}}, actor="device")


def outcome_of(entry: RolloutDevice) -> RolloutDevice:
    entry.refresh_from_db()
    return entry


# -- verify -----------------------------------------------------------------------------------


def test_device_back_online_within_bounds_is_updated_after_the_soak():
    wave = make_wave(bounds=BATTERY_ABOVE_10)
    device = make_device()
    report(device, battery=80)
    entry = enrol(wave, device)
    seen(device, 3)

    health.verify(wave, at(30))
    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED  # still soaking

    health.verify(wave, at(60))
    entry = outcome_of(entry)
    assert (entry.outcome, entry.failure, entry.finished_at) == (DeviceOutcome.UPDATED, "", at(60))


def test_device_that_stays_offline_fails_unhealthy_once_k_minutes_pass():
    wave = make_wave(online_minutes=15)
    device = make_device()
    entry = enrol(wave, device)
    seen(device, -1)  # its last message came just before the confirmation

    health.verify(wave, at(14))
    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED

    health.verify(wave, at(15))
    entry = outcome_of(entry)
    assert (entry.outcome, entry.failure) == (DeviceOutcome.FAILED, Failure.UNHEALTHY)
    assert entry.reason == (
        "not back online within 15 min of reporting the new version "
        "(last seen 2030-01-07 11:59:00 UTC)"
    )
    assert entry.finished_at == at(15)


def test_device_never_seen_is_named_as_never_seen():
    wave = make_wave(online_minutes=5)
    entry = enrol(wave, make_device())

    health.verify(wave, at(5))

    assert outcome_of(entry).reason.endswith("(last seen never)")


def test_absence_waits_while_the_bridge_works_through_a_backlog():
    """A bridge working through a mass reboot's backlog records every device's messages late,
    this one's too: its silence is not absence until the record has passed the window."""
    wave = make_wave(online_minutes=1)
    device = make_device()
    entry = enrol(wave, device)
    seen(device, -0.5)
    bridge = record.Reporter("bridge-behind")
    bridge.reached(timezone.now() - timedelta(minutes=9.5))  # 9.5 min behind the clock

    health.verify(wave, at(10))  # the record reaches 30 s after the report: too soon
    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED

    record.Reporter("bridge-behind").caught_up()  # the backlog drained; nothing came from it
    health.verify(wave, at(10))

    entry = outcome_of(entry)
    assert (entry.outcome, entry.failure) == (DeviceOutcome.FAILED, Failure.UNHEALTHY)


def test_devices_the_http_api_saw_lately_do_not_hide_a_lagging_bridge():
    wave = make_wave(online_minutes=1)
    entry = enrol(wave, make_device())
    seen(make_device(), 10)  # another device on the HTTP device API, seen just now
    record.Reporter("bridge-behind").reached(timezone.now() - timedelta(minutes=9.5))

    health.verify(wave, at(10))

    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED


def test_absence_is_not_judged_while_no_consumer_of_device_messages_reports():
    record.reset()  # no bridge, no SQS consumer running
    wave = make_wave(online_minutes=1)
    entry = enrol(wave, make_device())

    health.verify(wave, at(10))

    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED


def test_device_seen_after_reporting_is_not_updated_before_its_soak_ends():
    wave = make_wave(soak_minutes=60)
    Wave.objects.filter(pk=wave.pk).update(soak_until=at(90))
    wave.refresh_from_db()
    device = make_device()
    entry = enrol(wave, device)
    seen(device, 2)

    health.verify(wave, at(60))  # its own soak is over, the wave's is not
    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED

    health.verify(wave, at(90))
    assert outcome_of(entry).outcome == DeviceOutcome.UPDATED


def test_battery_dropping_below_the_bound_during_the_soak_fails_the_device():
    wave = make_wave(bounds=BATTERY_ABOVE_10)
    device = make_device()
    report(device, battery=70)
    entry = enrol(wave, device)
    seen(device, 2)
    health.verify(wave, at(10))
    assert outcome_of(entry).outcome == DeviceOutcome.REPORTED

    report(device, battery=4)
    health.verify(wave, at(20))
    report(device, battery=90)  # recovering later does not undo what was seen
    health.verify(wave, at(60))

    entry = outcome_of(entry)
    assert (entry.outcome, entry.failure) == (DeviceOutcome.FAILED, Failure.UNHEALTHY)
    assert entry.reason == "reported.battery was 4, bound: gt 10"
    assert entry.finished_at == at(20)


def test_reason_names_only_the_failing_bounds_of_a_tree():
    bounds = {
        "all": [
            BATTERY_ABOVE_10,
            {"field": "reported.temperature", "op": "lt", "value": 70},
            {
                "any": [
                    {"field": "reported.mode", "op": "eq", "value": "eco"},
                    {"not": {"field": "reported.errors", "op": "exists"}},
                ]
            },
        ]
    }
    wave = make_wave(bounds=bounds)
    hot, lost = make_device(), make_device()
    report(hot, battery=50, temperature=85, mode="eco")
    report(lost, temperature=20, mode="turbo", errors=["watchdog"])
    hot_entry, lost_entry = enrol(wave, hot), enrol(wave, lost)

    health.verify(wave, at(1))

    assert outcome_of(hot_entry).reason == "reported.temperature was 85, bound: lt 70"
    assert outcome_of(lost_entry).reason == (
        "reported.battery was missing, bound: gt 10; reported.mode was \"turbo\", bound: eq 'eco' "
        'and reported.errors was ["watchdog"], bound: not exists true'
    )


def test_device_whose_success_is_not_confirmed_is_left_as_the_engine_left_it():
    wave = make_wave(bounds=BATTERY_ABOVE_10, online_minutes=1, soak_minutes=0)
    device = make_device()
    report(device, battery=2)  # out of bounds, and never seen: verify would fail it if it looked
    job = make_job("wave-job", devices=[device], now=T0)
    JobExecution.objects.create(job=job, device=device, status="SUCCEEDED", queued_at=T0)
    entry = enrol(wave, device, outcome=DeviceOutcome.IN_PROGRESS)

    health.verify(wave, at(120))

    entry = outcome_of(entry)
    assert (entry.outcome, entry.failure, entry.reason, entry.finished_at) == (
        DeviceOutcome.IN_PROGRESS,
        "",
        "",
        None,
    )


def test_verify_leaves_other_waves_and_final_devices_alone():
    wave, other = make_wave(online_minutes=1), make_wave(online_minutes=1)
    failed = enrol(wave, make_device(), outcome=DeviceOutcome.FAILED, failure=Failure.FAILED)
    elsewhere = enrol(other, make_device())

    health.verify(wave, at(60))

    assert outcome_of(failed).failure == Failure.FAILED
    assert outcome_of(elsewhere).outcome == DeviceOutcome.REPORTED


def _wave_of(size: int) -> Wave:
    wave = make_wave(bounds=BATTERY_ABOVE_10, online_minutes=10, soak_minutes=30)
    for n in range(size):
        device = make_device()
        report(device, battery=2 if n % 3 == 0 else 50)
        seen(device, 5 if n % 3 != 1 else None)
        enrol(wave, device)
    return wave


@pytest.mark.parametrize("size", [3, 30])
def test_verify_takes_the_same_queries_for_3_or_30_devices(size):
    wave = _wave_of(size)
    wave = Wave.objects.select_related("rollout").get(pk=wave.pk)
    with CaptureQueriesContext(connection) as queries:
        health.verify(wave, at(30))
    assert len(queries) == 3
    outcomes = RolloutDevice.objects.filter(wave=wave).values_list("outcome", flat=True)
    assert DeviceOutcome.REPORTED not in outcomes
    assert sorted(set(outcomes)) == [DeviceOutcome.FAILED, DeviceOutcome.UPDATED]


# -- compare ----------------------------------------------------------------------------------


def _devices(wave: Wave, count: int, online: int, outcome: str, **reported) -> None:
    for n in range(count):
        device = make_device()
        if reported:
            report(device, **reported)
        seen(device, 100 if n < online else 10)
        enrol(wave, device, outcome=outcome)


NOW = at(101)


def test_compare_says_worse_when_fewer_updated_devices_are_online_beyond_the_margin():
    wave = make_wave(margin=5)
    _devices(wave, 50, 41, DeviceOutcome.UPDATED)  # 82 %
    _devices(wave, 100, 97, DeviceOutcome.ASSIGNED)  # 97 %

    comparison = health.compare(wave.rollout, NOW)

    assert comparison.worse
    assert comparison.reasons == [
        "online 82 % vs 97 % for devices not yet updated (margin 5 points)"
    ]
    assert comparison.updated == {"devices": 50, "percent": {"online": 82.0}}
    assert comparison.others == {"devices": 100, "percent": {"online": 97.0}}


def test_compare_is_not_worse_within_the_margin():
    wave = make_wave(margin=5)
    _devices(wave, 50, 46, DeviceOutcome.UPDATED)  # 92 %
    _devices(wave, 100, 97, DeviceOutcome.NOTIFIED)  # 97 %: 5 points, not more

    comparison = health.compare(wave.rollout, NOW)

    assert not comparison.worse
    assert comparison.reasons == []


def test_compare_counts_unhealthy_failures_as_updated_and_ignores_devices_mid_update():
    wave = make_wave(margin=5)
    _devices(wave, 20, 20, DeviceOutcome.UPDATED)
    _devices(wave, 5, 0, DeviceOutcome.FAILED)  # not Failure.UNHEALTHY: another failure
    for entry in RolloutDevice.objects.filter(outcome=DeviceOutcome.FAILED):
        RolloutDevice.objects.filter(pk=entry.pk).update(failure=Failure.UNHEALTHY)
    _devices(wave, 30, 0, DeviceOutcome.IN_PROGRESS)  # rebooting: in neither side
    _devices(wave, 20, 20, DeviceOutcome.ASSIGNED)

    comparison = health.compare(wave.rollout, NOW)

    assert comparison.updated["devices"] == 25
    assert comparison.others["devices"] == 20
    assert comparison.reasons == [
        "online 80 % vs 100 % for devices not yet updated (margin 5 points)"
    ]


def test_compare_reports_each_bound_and_the_whole_tree():
    bounds = {"all": [BATTERY_ABOVE_10, {"field": "reported.temperature", "op": "lt", "value": 70}]}
    wave = make_wave(bounds=bounds, margin=10)
    _devices(wave, 15, 15, DeviceOutcome.UPDATED, battery=50, temperature=20)
    _devices(wave, 5, 5, DeviceOutcome.REPORTED, battery=5, temperature=20)
    _devices(wave, 20, 20, DeviceOutcome.ASSIGNED, battery=50, temperature=20)

    comparison = health.compare(wave.rollout, NOW)

    assert comparison.updated["percent"] == {
        "online": 100.0,
        "all bounds": 75.0,
        "reported.battery gt 10": 75.0,
        "reported.temperature lt 70": 100.0,
    }
    assert comparison.reasons == [
        "all bounds held on 75 % vs 100 % for devices not yet updated (margin 10 points)",
        "reported.battery gt 10 held on 75 % vs 100 % for devices not yet updated "
        "(margin 10 points)",
    ]


def test_compare_with_too_few_devices_on_a_side_is_not_worse_and_says_why():
    wave = make_wave()
    _devices(wave, 5, 0, DeviceOutcome.UPDATED)
    _devices(wave, 100, 100, DeviceOutcome.ASSIGNED)

    comparison = health.compare(wave.rollout, NOW)

    assert not comparison.worse
    assert comparison.reasons == [
        "no comparison: 5 updated and 100 devices not yet updated; at least 20 on each side "
        "are needed"
    ]


@pytest.mark.parametrize("size", [20, 60])
def test_compare_is_one_query_whatever_the_size(size):
    wave = make_wave(
        bounds={
            "any": [BATTERY_ABOVE_10, {"field": "reported.charging", "op": "eq", "value": True}]
        }
    )
    _devices(wave, size, size, DeviceOutcome.UPDATED, battery=50)
    _devices(wave, size, size, DeviceOutcome.ASSIGNED, battery=50)
    rollout = Rollout.objects.get(pk=wave.rollout_id)
    with CaptureQueriesContext(connection) as queries:
        comparison = health.compare(rollout, NOW)
    assert len(queries) == 1
    assert not comparison.worse
