"""The jobs engine's tick (firmware/engine.py) with a controllable clock: pacing, schedules,
windows, timeouts, retries, aborts, completion, continuous jobs and decommissioning."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices import groups, services
from firmware import engine
from firmware.models import JobExecution, JobTemplate
from firmware.protocol import service
from tests.conftest import make_device, make_group
from tests.firmware.helpers import at, executions_of, finish, make_job, sent, start

pytestmark = pytest.mark.django_db


def fleet(n: int, group_name: str = "fleet"):
    group = make_group(group_name)
    devices = [make_device(f"{group_name}-{i:03d}", group=group) for i in range(n)]
    return group, devices


def tick_every(seconds: int, until: int, start_at: int = 0) -> int:
    released = 0
    for t in range(start_at, until, seconds):
        released += engine.tick(at(t)).released
    return released


def test_a_job_without_rollout_config_releases_every_target_at_once():
    group, devices = fleet(5)
    job = make_job(groups=[group])
    assert JobExecution.objects.count() == 0  # rows exist only once released
    report = engine.tick(at())
    assert report.released == 5
    assert [e.status for e in executions_of(job)] == ["QUEUED"] * 5
    assert sorted(device for device, _ in sent("notify")) == sorted(d.device_id for d in devices)
    # Each became its device's head: notify-next carries it.
    assert all(body["execution"]["jobId"] == "job-1" for _, body in sent("notify-next"))


def test_maximum_per_minute_paces_the_release():
    group, _ = fleet(40)
    job = make_job(groups=[group], rollout={"maximum_per_minute": 10})
    releases = [engine.tick(at(t)).released for t in range(0, 180, 6)]
    assert sum(releases) == 30  # three minutes at 10 a minute
    for first in range(len(releases)):  # and no sliding minute holds more than 10
        assert sum(releases[first : first + 10]) <= 10
    job.refresh_from_db()
    assert job.released_count == 30


def test_a_tick_after_a_pause_does_not_burst():
    group, _ = fleet(40)
    make_job(groups=[group], rollout={"maximum_per_minute": 10})
    tick_every(6, 60)
    assert engine.tick(at(minutes=10)).released <= 1  # ten minutes later: no catch-up burst


def test_exponential_rate_steps_up_when_the_criteria_count_is_reached():
    group, _ = fleet(60)
    rollout = {
        "exponential_rate": {
            "base_rate_per_minute": 5,
            "increment_factor": 2.0,
            "rate_increase_criteria": {"number_of_notified_things": 5},
        }
    }
    job = make_job(groups=[group], rollout=rollout)
    releases = {t: engine.tick(at(t)).released for t in range(0, 60, 3)}
    five = next(t for t in releases if sum(r for u, r in releases.items() if u <= t) == 5)
    assert five == 48  # 5 a minute: the fifth after 48 s
    job.refresh_from_db()
    assert job.rollout_rate == 10  # doubled once 5 were notified
    second_minute = sum(engine.tick(at(t)).released for t in range(60, 120, 3))
    assert second_minute > 5


def test_a_scheduled_job_starts_at_its_start_time():
    group, _ = fleet(2)
    schedule = {"start_time": at(minutes=45).isoformat()}
    job = make_job(groups=[group], scheduling=schedule)
    assert job.status == "SCHEDULED"
    assert engine.tick(at(minutes=44)).released == 0
    assert engine.tick(at(minutes=45)).released == 2
    job.refresh_from_db()
    assert job.status == "IN_PROGRESS"


def test_end_time_with_stop_rollout_releases_nothing_more():
    group, _ = fleet(20)
    schedule = {
        "start_time": at(minutes=30).isoformat(),
        "end_time": at(minutes=61).isoformat(),
        "end_behavior": "STOP_ROLLOUT",
    }
    job = make_job(groups=[group], scheduling=schedule, rollout={"maximum_per_minute": 1})
    engine.tick(at(minutes=30))
    engine.tick(at(minutes=61))
    engine.tick(at(minutes=62))
    job.refresh_from_db()
    assert job.released_count == 1 and job.rollout_stopped


def test_end_time_with_cancel_cancels_the_job():
    group, _ = fleet(3)
    schedule = {
        "start_time": at(minutes=30).isoformat(),
        "end_time": at(minutes=61).isoformat(),
        "end_behavior": "CANCEL",
    }
    job = make_job(groups=[group], scheduling=schedule, rollout={"maximum_per_minute": 1})
    engine.tick(at(minutes=30))
    assert engine.tick(at(minutes=61)).canceled == ["job-1"]
    assert [e.status for e in executions_of(job)] == ["CANCELED"]


def test_maintenance_windows_gate_the_release():
    group, _ = fleet(3)
    schedule = {
        "start_time": at(minutes=30).isoformat(),
        "maintenance_windows": [{"start_time": "cron(0 14 * * ? *)", "duration_in_minutes": 60}],
    }
    make_job(groups=[group], scheduling=schedule)
    assert engine.tick(at(minutes=30)).released == 0  # 12:30: outside
    assert engine.tick(at(minutes=120)).released == 3  # 14:00: inside


def test_a_weekday_night_window_opens_and_closes_the_release():
    group, _ = fleet(30)
    nightly = {"start_time": "cron(0 2 ? * MON-FRI *)", "duration_in_minutes": 60}
    job = make_job(
        groups=[group],
        scheduling={"maintenance_windows": [nightly]},
        rollout={"maximum_per_minute": 5},
    )
    assert job.status == "IN_PROGRESS"  # no start time: it runs, inside its windows
    tuesday = 13 * 60  # minutes from T0 (Monday 12:00) to Tuesday 01:00
    assert engine.tick(at(59, minutes=tuesday + 59)).released == 0  # 01:59:59: closed
    assert engine.tick(at(minutes=tuesday + 60)).released == 1  # 02:00: open, the pace starts
    assert engine.tick(at(59, minutes=tuesday + 60)).released == 4  # five in its first minute
    assert engine.tick(at(59, minutes=tuesday + 119)).released == 1  # 02:59:59: still open
    assert engine.tick(at(minutes=tuesday + 120)).released == 0  # 03:00: closed
    saturday = tuesday + 4 * 24 * 60
    assert engine.tick(at(minutes=saturday + 90)).released == 0  # 02:30 on a Saturday
    monday = tuesday + 6 * 24 * 60
    assert engine.tick(at(minutes=monday + 60)).released == 1  # open again
    job.refresh_from_db()
    assert job.released_count == 7


def test_a_window_on_the_last_day_of_the_month():
    group, _ = fleet(2)
    last_day = {"start_time": "cron(0 0 L * ? *)", "duration_in_minutes": 1430}
    make_job(groups=[group], scheduling={"maintenance_windows": [last_day]})
    assert engine.tick(at(minutes=23 * 24 * 60)).released == 0  # January 30th, 12:00
    assert engine.tick(at(minutes=24 * 24 * 60)).released == 2  # January 31st, 12:00


def test_a_job_from_a_template_keeps_the_templates_windows():
    group, _ = fleet(3)
    JobTemplate.objects.create(
        template_id="nightly-reboot",
        document={"operation": "reboot"},
        scheduling_config={
            "maintenance_windows": [{"start_time": "cron(0 2 ? * * *)", "duration_in_minutes": 60}]
        },
    )
    job = make_job(
        groups=[group],
        document=None,
        template="nightly-reboot",
        scheduling={"start_time": at(minutes=45).isoformat()},
    )
    assert job.status == "SCHEDULED"
    assert job.scheduling_config["maintenance_windows"][0]["start_time"] == "cron(0 2 ? * * *)"
    assert engine.tick(at(minutes=45)).released == 0  # started, but 12:45 is outside
    assert engine.tick(at(minutes=14 * 60 + 10)).released == 3  # Tuesday 02:10


def test_a_silent_in_progress_device_times_out_and_is_retried_with_the_next_number():
    device = make_device("silent")
    job = make_job(
        devices=[device],
        timeout={"in_progress_timeout_in_minutes": 5},
        retry={"criteria_list": [{"failure_type": "TIMED_OUT", "number_of_retries": 1}]},
    )
    engine.tick(at())
    (first,) = executions_of(job)
    start(first, at(10), in_progress_deadline=at(10, minutes=5))
    assert engine.tick(at(minutes=5)).timed_out == 0
    report = engine.tick(at(11, minutes=5))
    assert (report.timed_out, report.retried) == (1, 1)
    attempts = {e.execution_number: e.status for e in executions_of(job)}
    assert attempts == {1: "TIMED_OUT", 2: "QUEUED"}
    # The device hears of the new attempt.
    assert sent("notify-next")[-1][1]["execution"]["executionNumber"] == 2
    # The retry times out too: no third attempt (one retry allowed).
    second = JobExecution.objects.get(job=job, execution_number=2)
    start(second, at(minutes=6), in_progress_deadline=at(minutes=7))
    assert engine.tick(at(minutes=8)).retried == 0
    job.refresh_from_db()
    assert job.status == "COMPLETED"


def test_the_step_timer_times_out_too():
    device = make_device()
    job = make_job(devices=[device])
    engine.tick(at())
    (execution,) = executions_of(job)
    start(execution, at(), step_deadline=at(minutes=1))
    assert engine.tick(at(minutes=2)).timed_out == 1


def test_failed_executions_are_retried_per_failure_type():
    device = make_device()
    job = make_job(
        devices=[device],
        retry={"criteria_list": [{"failure_type": "FAILED", "number_of_retries": 2}]},
    )
    for n in (1, 2, 3):
        engine.tick(at(minutes=n))
        execution = JobExecution.objects.get(job=job, execution_number=n)
        finish(execution, "FAILED", at(minutes=n))
    engine.tick(at(minutes=5))
    numbers = sorted(e.execution_number for e in executions_of(job))
    assert numbers == [1, 2, 3]  # two retries, then no more


def test_an_abort_at_its_threshold_cancels_the_queued_rest_and_leaves_in_progress_running():
    group, _ = fleet(10)
    abort = {
        "criteria_list": [
            {
                "failure_type": "FAILED",
                "action": "CANCEL",
                "threshold_percentage": 50,
                "min_number_of_executed_things": 4,
            }
        ]
    }
    job = make_job(groups=[group], abort=abort)
    engine.tick(at())
    first = executions_of(job)
    finish(first[0], "FAILED", at(1))
    finish(first[1], "SUCCEEDED", at(1))
    finish(first[2], "FAILED", at(1))  # 2 of 3 executed failed, 10 notified
    start(first[3], at(1))
    report = engine.tick(at(5))
    assert report.aborted == ["job-1"]
    job.refresh_from_db()
    assert (job.status, job.reason_code) == ("CANCELED", "ABORTED")
    statuses = [e.status for e in executions_of(job)]
    assert statuses[3] == "IN_PROGRESS"
    assert statuses.count("CANCELED") == 6


def test_an_abort_waits_for_the_minimum_of_notified_things():
    group, _ = fleet(2)
    abort = {
        "criteria_list": [
            {
                "failure_type": "ALL",
                "action": "CANCEL",
                "threshold_percentage": 10,
                "min_number_of_executed_things": 3,
            }
        ]
    }
    job = make_job(groups=[group], abort=abort)
    engine.tick(at())
    finish(executions_of(job)[0], "REJECTED", at(1))
    assert engine.tick(at(5)).aborted == []


def test_a_snapshot_job_completes_when_every_execution_is_final():
    group, _ = fleet(2)
    job = make_job(groups=[group])
    engine.tick(at())
    first, second = executions_of(job)
    finish(first, "SUCCEEDED", at(1))
    engine.tick(at(2))
    job.refresh_from_db()
    assert job.status == "IN_PROGRESS"
    finish(second, "REJECTED", at(3))
    assert engine.tick(at(4)).completed == ["job-1"]


def test_a_continuous_job_reaches_a_device_that_joins_its_static_group():
    group, _ = fleet(1)
    job = make_job(groups=[group], target_selection="CONTINUOUS")
    engine.tick(at())
    newcomer = make_device("newcomer")
    groups.assign_devices([newcomer], group, actor="operator")
    assert engine.tick(at(5)).released == 1
    assert [e.device.device_id for e in executions_of(job)] == ["fleet-000", "newcomer"]
    job.refresh_from_db()
    assert job.status == "IN_PROGRESS"  # continuous jobs never complete on their own


def test_a_continuous_job_follows_a_dynamic_group_both_ways():
    dynamic = make_group("v1", filters={"field": "firmware_version", "op": "eq", "value": "1.0"})
    old = make_device("old", firmware_version="1.0")
    job = make_job(
        groups=[dynamic], target_selection="CONTINUOUS", rollout={"maximum_per_minute": 1}
    )
    engine.tick(at())
    joiner = make_device("joiner", firmware_version="1.0")
    assert engine.tick(at(1)).released == 1  # a late joiner ignores the rate
    services.update_device(old, {"firmware_version": "1.1"}, actor="operator")
    assert engine.tick(at(2)).removed == 1
    statuses = {e.device.device_id: e.status for e in executions_of(job)}
    assert statuses == {"old": "REMOVED", joiner.device_id: "QUEUED"}


def test_decommissioning_a_device_cancels_its_executions():
    device = make_device(status="active")
    job = make_job(devices=[device])
    engine.tick(at())
    start(executions_of(job)[0], at(1))
    services.transition_device(device, "decommissioned", actor="operator")
    assert [e.status for e in executions_of(job)] == ["CANCELED"]


def test_two_ticks_at_once_release_no_device_twice():
    group, _ = fleet(30)
    job = make_job(groups=[group], rollout={"maximum_per_minute": 10})
    # The first tick holds the job's lock (as a concurrent worker would) while the second runs.
    import threading

    from django.db import connection, transaction

    results = []

    def second_tick():
        results.append(engine.tick(at(0)).released)
        connection.close()

    with transaction.atomic():
        engine.lock(job.pk)
        thread = threading.Thread(target=second_tick)
        thread.start()
        thread.join()
    assert results == [0]
    assert engine.tick(at(0)).released == 1
    assert JobExecution.objects.filter(job=job).count() == 1


def test_a_succeeded_firmware_execution_without_the_new_version_is_not_a_success(settings):
    from firmware import jobs
    from tests.firmware.helpers import make_version

    settings.FIRMWARE_CONFIRM_MINUTES = 30
    version = make_version("2.0.0")
    stays, updates = (
        make_device("stays", firmware_version="1.0.0"),
        make_device("updates", firmware_version="1.0.0"),
    )
    job = make_job(devices=[stays, updates], firmware=version.pk, document=None)
    engine.tick(at())
    for execution in executions_of(job):
        finish(execution, "SUCCEEDED", at(1))
    engine.note_reported_versions({updates.pk: "2.0"}, now=at(2))
    engine.tick(at(minutes=5))
    details = jobs.job_process_details(job)
    assert details["number_of_succeeded_things"] == 1
    assert details["number_of_awaiting_confirmation_things"] == 1
    engine.tick(at(minutes=32))
    details = jobs.job_process_details(job)
    assert (details["number_of_succeeded_things"], details["number_of_failed_things"]) == (1, 1)
    failed = JobExecution.objects.get(job=job, device=stays)
    assert "1.0.0" in failed.status_details["reason"]
    updates.refresh_from_db()
    assert updates.firmware_version == "2.0"  # what the device reported


def test_a_shadow_report_of_the_new_version_confirms_the_success_and_updates_the_registry():
    from shadows import services as shadows
    from tests.firmware.helpers import make_version

    version = make_version("2.0.0")
    device = make_device("reports", firmware_version="1.0.0", status="active")
    job = make_job(devices=[device], firmware=version.pk, document=None)
    engine.tick(at())
    (execution,) = executions_of(job)
    finish(execution, "SUCCEEDED", at(1))
    state = {"state": {"reported": {"firmware_version": "2.0.0"}}}
    shadows.update(device, "", state, actor="device")
    execution.refresh_from_db()
    device.refresh_from_db()
    assert execution.confirmed_at is not None
    assert device.firmware_version == "2.0.0"


def test_a_version_report_confirms_at_the_time_it_was_received_not_processed():
    """A bridge working through a backlog processes a report minutes after it arrived; the
    rollout's health check counts "back online" from the confirmation, so it is the report's
    receive time (the device's later messages carry theirs)."""
    from shadows import services as shadows
    from tests.firmware.helpers import make_version

    version = make_version("2.0.0")
    device = make_device("late", firmware_version="1.0.0", status="active")
    job = make_job(devices=[device], firmware=version.pk, document=None)
    engine.tick(at())
    (execution,) = executions_of(job)
    finish(execution, "SUCCEEDED", at(1))
    received = timezone.now() - timedelta(minutes=3)
    state = {"state": {"reported": {"firmware_version": "2.0.0"}}}
    shadows.update(device, "", state, actor="device", now=received)
    execution.refresh_from_db()
    assert execution.confirmed_at == received
    assert execution.followed_up_at > received  # processed now


def test_a_succeeded_after_the_version_confirms_at_the_time_the_succeeded_was_received():
    from tests.firmware.helpers import make_version

    version = make_version("2.0.0")
    device = make_device("booted", firmware_version="2.0.0", status="active")
    job = make_job(devices=[device], firmware=version.pk, document=None)
    engine.tick(at())
    (execution,) = executions_of(job)
    received = timezone.now() - timedelta(minutes=3)
    for status in ("IN_PROGRESS", "SUCCEEDED"):
        service.update("booted", job.job_id, {"status": status}, now=received)
    execution.refresh_from_db()
    assert (execution.status, execution.confirmed_at) == ("SUCCEEDED", received)
