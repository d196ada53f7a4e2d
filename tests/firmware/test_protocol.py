"""The jobs device protocol's service (device-protocol.md §2.1-2.5, decision 7 of §8)."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device, DeviceEvent
from firmware import engine, errors
from firmware.choices import ExecutionStatus as S
from firmware.models import JobExecution
from firmware.protocol import firmware_runs, service
from tests.conftest import make_device
from tests.firmware.jobs_helpers import clear_outbox, make_firmware, make_job, queue, sent

pytestmark = pytest.mark.django_db


def now():
    return timezone.now()


def body(**fields) -> bytes:
    return orjson.dumps(fields)


@pytest.fixture
def device():
    return make_device("jobs-dev-1", status=DeviceStatus.ACTIVE)


def update(device, job_id, **fields):
    return service.update(device.device_id, job_id, body(**fields), now=now())


def refused(error_class, call, *args, **kwargs) -> errors.JobsError:
    with pytest.raises(error_class) as caught:
        call(*args, **kwargs)
    return caught.value


# --- get ---------------------------------------------------------------------------------------


def test_get_lists_in_progress_before_queued_by_queue_time_and_echoes_the_token(device):
    late, early, running = make_job("late"), make_job("early"), make_job("running")
    queue(late, device, minutes_ago=1)
    queue(early, device, minutes_ago=5)
    queue(running, device, minutes_ago=0, status=S.IN_PROGRESS, started_at=now())
    answer = service.get_pending(device.device_id, body(clientToken="t-1"), now=now())
    assert [j["jobId"] for j in answer["inProgressJobs"]] == ["running"]
    assert [j["jobId"] for j in answer["queuedJobs"]] == ["early", "late"]
    assert answer["clientToken"] == "t-1" and isinstance(answer["timestamp"], int)
    assert "startedAt" not in answer["queuedJobs"][0]
    assert set(answer["queuedJobs"][0]) == {
        "jobId",
        "queuedAt",
        "lastUpdatedAt",
        "versionNumber",
        "executionNumber",
    }


def test_unknown_and_decommissioned_things_are_resource_not_found():
    refused(errors.ResourceNotFound, service.get_pending, "nobody", b"{}", now=now())
    gone = make_device("jobs-gone", status=DeviceStatus.DECOMMISSIONED)
    queue(make_job(), gone)
    refused(errors.ResourceNotFound, service.get_pending, gone.device_id, b"{}", now=now())
    refused(errors.ResourceNotFound, service.start_next, gone.device_id, b"{}", now=now())


# --- start-next --------------------------------------------------------------------------------


def test_start_next_with_nothing_pending_answers_without_execution(device):
    answer = service.start_next(device.device_id, body(clientToken="s"), now=now())
    assert set(answer) == {"timestamp", "clientToken"}


def test_start_next_starts_the_head_sets_its_timers_and_sends_nothing(device):
    job = make_job("fw", timeout_config={"in_progress_timeout_in_minutes": 30})
    queue(job, device)
    clear_outbox()
    moment = now()
    answer = service.start_next(
        device.device_id,
        body(statusDetails={"step": "download"}, stepTimeoutInMinutes=5, clientToken="s"),
        now=moment,
    )
    execution = answer["execution"]
    assert (execution["jobId"], execution["status"], execution["versionNumber"]) == (
        "fw",
        "IN_PROGRESS",
        2,
    )
    assert execution["statusDetails"] == {"step": "download"}
    assert execution["startedAt"] == int(moment.timestamp())
    assert execution["jobDocument"] == {"operation": "reboot"}
    row = JobExecution.objects.get()
    assert row.in_progress_deadline == moment + timedelta(minutes=30)
    assert row.step_deadline == moment + timedelta(minutes=5)
    assert sent() == []  # §2.5: start-next sends no notification


def test_start_next_while_one_is_in_progress_returns_it_unchanged(device):
    queue(make_job("a"), device, minutes_ago=2)
    queue(make_job("b"), device, minutes_ago=1)
    service.start_next(device.device_id, body(statusDetails={"k": "first"}), now=now())
    again = service.start_next(device.device_id, body(statusDetails={"k": "second"}), now=now())
    assert again["execution"]["jobId"] == "a"
    assert again["execution"]["statusDetails"] == {"k": "first"}
    assert again["execution"]["versionNumber"] == 2
    assert JobExecution.objects.get(job__job_id="b").status == S.QUEUED


def test_a_step_timer_never_runs_past_the_in_progress_deadline(device):
    queue(make_job("t", timeout_config={"in_progress_timeout_in_minutes": 10}), device)
    moment = now()
    service.start_next(device.device_id, body(stepTimeoutInMinutes=60), now=moment)
    row = JobExecution.objects.get()
    assert row.step_deadline == row.in_progress_deadline == moment + timedelta(minutes=10)


@pytest.mark.parametrize("minutes", [0, 10081, -1, "5", 1.5, True])
def test_start_next_refuses_a_step_timeout_outside_1_to_10080(device, minutes):
    queue(make_job(), device)
    error = refused(
        errors.InvalidRequest,
        service.start_next,
        device.device_id,
        body(stepTimeoutInMinutes=minutes),
        now=now(),
    )
    assert "stepTimeoutInMinutes" in error.message
    assert JobExecution.objects.get().status == S.QUEUED


# --- describe ----------------------------------------------------------------------------------


def test_describe_by_job_id_attempt_and_without_document(device):
    job = make_job("d")
    queue(job, device, execution_number=1, status=S.FAILED)
    queue(job, device, execution_number=2)
    latest = service.describe(device.device_id, "d", body(clientToken="c"), now=now())
    assert latest["execution"]["executionNumber"] == 2
    assert latest["execution"]["jobDocument"] == {"operation": "reboot"}
    assert latest["clientToken"] == "c"
    bare = service.describe(device.device_id, "d", body(includeJobDocument=False), now=now())
    assert "jobDocument" not in bare["execution"]
    error = refused(
        errors.TerminalStateReached,
        service.describe,
        device.device_id,
        "d",
        body(executionNumber=1),
        now=now(),
    )
    assert error.code == "TerminalStateReached" and error.http_status == 410
    refused(
        errors.ResourceNotFound,
        service.describe,
        device.device_id,
        "d",
        body(executionNumber=3),
        now=now(),
    )
    refused(errors.ResourceNotFound, service.describe, device.device_id, "nope", b"", now=now())


def test_describe_next_names_the_head_or_nothing(device):
    assert set(service.describe(device.device_id, "$next", b"", now=now())) == {"timestamp"}
    queue(make_job("second"), device, minutes_ago=1)
    queue(make_job("first"), device, minutes_ago=3)
    answer = service.describe(device.device_id, "$next", b"", now=now())
    assert answer["execution"]["jobId"] == "first"
    assert answer["execution"]["thingName"] == device.device_id


def test_a_device_sees_only_its_own_executions(device):
    other = make_device("jobs-other", status=DeviceStatus.ACTIVE)
    queue(make_job("theirs"), other)
    assert service.get_pending(device.device_id, b"", now=now())["queuedJobs"] == []
    refused(errors.ResourceNotFound, update, device, "theirs", status="SUCCEEDED")


# --- update: the state machine of §2.4 ---------------------------------------------------------


LEGAL = [
    (S.QUEUED, S.IN_PROGRESS),
    (S.QUEUED, S.SUCCEEDED),  # decision 7
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.REJECTED),
    (S.IN_PROGRESS, S.IN_PROGRESS),
    (S.IN_PROGRESS, S.SUCCEEDED),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.REJECTED),
]
TERMINAL = [S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.REJECTED, S.REMOVED, S.CANCELED]
ILLEGAL = [(t, target) for t in TERMINAL for target in (S.IN_PROGRESS, S.SUCCEEDED, S.FAILED)] + [
    (s, t)
    for s in (S.QUEUED, S.IN_PROGRESS)
    for t in (S.QUEUED, S.CANCELED, S.TIMED_OUT, S.REMOVED)
]


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_a_device_may_make_each_legal_move(device, current, target):
    queue(make_job("m"), device, status=current, version_number=3)
    answer = update(device, "m", status=target, clientToken="u")
    assert set(answer) == {"timestamp", "clientToken"}  # default flags (§2.2 [LIVE])
    row = JobExecution.objects.get()
    assert (row.status, row.version_number) == (target, 4)
    if current == S.QUEUED:  # startedAt only when it starts (§2.2)
        assert (row.started_at is not None) == (target == S.IN_PROGRESS)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_every_illegal_move_is_an_invalid_state_transition_with_the_state(device, current, target):
    queue(make_job("m"), device, status=current, version_number=3, status_details={"a": "b"})
    error = refused(errors.InvalidStateTransition, update, device, "m", status=target)
    assert error.execution_state == {
        "status": current,
        "versionNumber": 3,
        "statusDetails": {"a": "b"},
    }
    assert error.http_status == 409
    assert JobExecution.objects.get().version_number == 3


@pytest.mark.parametrize("status", [None, "DONE", "succeeded", 1])
def test_update_needs_a_known_status(device, status):
    queue(make_job("m"), device)
    fields = {} if status is None else {"status": status}
    assert "status" in refused(errors.InvalidRequest, update, device, "m", **fields).message


def test_update_flags_return_the_state_and_the_document(device):
    queue(make_job("m"), device)
    answer = update(
        device, "m", status="IN_PROGRESS", includeJobExecutionState=True, includeJobDocument=True
    )
    assert answer["executionState"] == {"status": "IN_PROGRESS", "versionNumber": 2}
    assert answer["jobDocument"] == {"operation": "reboot"}
    assert "clientToken" not in answer


@pytest.mark.parametrize("expected", [2, "2"])
def test_expected_version_as_int_or_string(device, expected):
    queue(make_job("m"), device, version_number=2)
    update(device, "m", status="IN_PROGRESS", expectedVersion=expected)
    assert JobExecution.objects.get().version_number == 3


@pytest.mark.parametrize("expected", [1, "1", "7"])
def test_a_stale_expected_version_is_a_version_mismatch_with_the_state(device, expected):
    queue(make_job("m"), device, version_number=2)
    error = refused(
        errors.VersionMismatch, update, device, "m", status="IN_PROGRESS", expectedVersion=expected
    )
    assert error.execution_state == {"status": "QUEUED", "versionNumber": 2}
    assert JobExecution.objects.get().status == S.QUEUED


@pytest.mark.parametrize("expected", ["two", "-1", -1, 1.0, True, "1e3"])
def test_an_expected_version_that_is_no_number_is_invalid(device, expected):
    queue(make_job("m"), device)
    refused(
        errors.InvalidRequest, update, device, "m", status="IN_PROGRESS", expectedVersion=expected
    )


BAD_DETAILS = [
    {f"k{n}": "v" for n in range(11)},
    {"bad key": "v"},
    {"k" * 129: "v"},
    {"": "v"},
    {"k": ""},
    {"k": "v" * 1025},
    {"k": 1},
    {"k": {"nested": "v"}},
    {"k": "line\nbreak"},
    ["k", "v"],
    "details",
]


@pytest.mark.parametrize("details", BAD_DETAILS)
def test_status_details_limits(device, details):
    queue(make_job("m"), device)
    error = refused(
        errors.InvalidRequest, update, device, "m", status="IN_PROGRESS", statusDetails=details
    )
    assert "statusDetails" in error.message
    assert JobExecution.objects.get().status == S.QUEUED


def test_status_details_at_the_limits_are_kept_and_omitted_ones_stay(device):
    queue(make_job("m"), device)
    details = {f"k{n}": "v" for n in range(9)} | {"a:b_c-" + "k" * 122: "v" * 1024}
    update(device, "m", status="IN_PROGRESS", statusDetails=details)
    update(device, "m", status="IN_PROGRESS")
    assert JobExecution.objects.get().status_details == details


def test_step_timer_set_replaced_and_cleared_on_update(device):
    queue(make_job("m"), device, status=S.IN_PROGRESS, started_at=now())
    update(device, "m", status="IN_PROGRESS", stepTimeoutInMinutes=3)
    first = JobExecution.objects.get().step_deadline
    update(device, "m", status="IN_PROGRESS", stepTimeoutInMinutes=10)
    assert JobExecution.objects.get().step_deadline > first
    update(device, "m", status="IN_PROGRESS", stepTimeoutInMinutes=-1)
    assert JobExecution.objects.get().step_deadline is None
    refused(
        errors.InvalidRequest, update, device, "m", status="IN_PROGRESS", stepTimeoutInMinutes=0
    )


def test_a_terminal_update_clears_the_timers(device):
    job = make_job("m", timeout_config={"in_progress_timeout_in_minutes": 5})
    queue(job, device)
    update(device, "m", status="IN_PROGRESS", stepTimeoutInMinutes=2)
    update(device, "m", status="SUCCEEDED")
    row = JobExecution.objects.get()
    assert row.in_progress_deadline is None and row.step_deadline is None


# --- bad documents -----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"12"])
def test_invalid_json_is_invalid_json(device, payload):
    queue(make_job("m"), device)
    refused(errors.InvalidJson, service.update, device.device_id, "m", payload, now=now())


@pytest.mark.parametrize(
    "payload",
    [
        b'{"status": "IN_PROGRESS", "statusDetails": {"k": "a\\u0000b"}}',
        b'{"status": "IN_PROGRESS", "expectedVersion": 100000000000000000000000}',
        b'{"status": "IN_PROGRESS", "x": ' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"status": "IN_PROGRESS", "clientToken": "' + b"t" * 65 + b'"}',
        b'{"status": "IN_PROGRESS", "clientToken": 5}',
        b'{"status": "IN_PROGRESS", "includeJobDocument": "yes"}',
        b'{"status": "IN_PROGRESS", "executionNumber": 0}',
    ],
)
def test_hostile_or_malformed_fields_are_invalid_requests(device, payload):
    queue(make_job("m"), device)
    refused(errors.InvalidRequest, service.update, device.device_id, "m", payload, now=now())
    assert JobExecution.objects.get().version_number == 1


# --- repeats -----------------------------------------------------------------------------------


def test_a_repeated_update_is_answered_as_before_and_applied_once(device):
    queue(make_job("m"), device)
    request = body(status="IN_PROGRESS", clientToken="tok-1", includeJobExecutionState=True)
    first = service.update(device.device_id, "m", request, now=now())
    second = service.update(device.device_id, "m", request, now=now() + timedelta(seconds=5))
    assert second == first
    assert JobExecution.objects.get().version_number == 2


def test_a_repeated_terminal_update_notifies_once(device):
    queue(make_job("m"), device)
    clear_outbox()
    request = body(status="SUCCEEDED", clientToken="tok-2")
    service.update(device.device_id, "m", request, now=now())
    service.update(device.device_id, "m", request, now=now())
    assert len(sent("/jobs/notify")) == 1
    assert JobExecution.objects.get().status == S.SUCCEEDED


def test_the_same_token_with_another_request_is_applied(device):
    queue(make_job("m"), device)
    update(device, "m", status="IN_PROGRESS", clientToken="same")
    update(device, "m", status="IN_PROGRESS", clientToken="same", statusDetails={"p": "50"})
    assert JobExecution.objects.get().version_number == 3


def test_a_repeat_long_after_is_applied_unless_redelivered(device):
    queue(make_job("m"), device)
    request = body(status="IN_PROGRESS", clientToken="old")
    service.update(device.device_id, "m", request, now=now() - timedelta(minutes=30))
    service.update(device.device_id, "m", request, now=now(), redelivered=True)
    assert JobExecution.objects.get().version_number == 2
    service.update(device.device_id, "m", request, now=now())
    assert JobExecution.objects.get().version_number == 3


def test_a_repeated_start_next_does_not_start_the_next_execution(device):
    queue(make_job("a"), device, minutes_ago=2)
    queue(make_job("b"), device, minutes_ago=1)
    request = body(clientToken="sn-1")
    first = service.start_next(device.device_id, request, now=now())
    update(device, "a", status="SUCCEEDED")
    again = service.start_next(device.device_id, request, now=now(), redelivered=True)
    assert again == first
    assert JobExecution.objects.get(job__job_id="b").status == S.QUEUED


def test_only_the_last_16_tokens_are_kept(device):
    queue(make_job("m"), device)
    for n in range(20):
        update(device, "m", status="IN_PROGRESS", clientToken=f"t{n}")
    tokens = [e["token"] for e in JobExecution.objects.get().recent_client_tokens]
    assert tokens == [f"t{n}" for n in range(4, 20)]


# --- notifications (§2.5) ----------------------------------------------------------------------


def payloads(suffix):
    return [orjson.loads(p) for _t, p in sent(suffix)]


def test_a_terminal_head_notifies_the_rest_and_the_new_head(device):
    queue(make_job("a"), device, minutes_ago=2)
    queue(make_job("b"), device, minutes_ago=1)
    clear_outbox()
    update(device, "a", status="FAILED", statusDetails={"reason": "disk"})
    [notify] = payloads("/jobs/notify")
    assert [j["jobId"] for j in notify["jobs"]["QUEUED"]] == ["b"]
    [notify_next] = payloads("/jobs/notify-next")
    assert notify_next["execution"]["jobId"] == "b"


def test_a_terminal_non_head_notifies_without_notify_next(device):
    queue(make_job("a"), device, minutes_ago=2)
    queue(make_job("b"), device, minutes_ago=1)
    clear_outbox()
    update(device, "b", status="REJECTED")
    assert len(payloads("/jobs/notify")) == 1
    assert payloads("/jobs/notify-next") == []


def test_the_last_terminal_sends_the_empty_list_and_an_empty_next(device):
    queue(make_job("a"), device)
    clear_outbox()
    update(device, "a", status="SUCCEEDED")
    [notify] = payloads("/jobs/notify")
    assert set(notify) == {"timestamp", "jobs"} and notify["jobs"] == {}
    [notify_next] = payloads("/jobs/notify-next")
    assert set(notify_next) == {"timestamp"}


def test_a_non_head_moved_in_progress_that_becomes_the_head_sends_notify_next_only(device):
    queue(make_job("a"), device, minutes_ago=2)
    queue(make_job("b"), device, minutes_ago=1)
    clear_outbox()
    update(device, "b", status="IN_PROGRESS")
    assert payloads("/jobs/notify") == []
    [notify_next] = payloads("/jobs/notify-next")
    assert notify_next["execution"]["jobId"] == "b"


def test_the_head_moved_in_progress_by_update_sends_nothing(device):
    queue(make_job("a"), device)
    clear_outbox()
    update(device, "a", status="IN_PROGRESS")
    update(device, "a", status="IN_PROGRESS", statusDetails={"p": "1"})
    assert sent() == []


# --- firmware executions -----------------------------------------------------------------------


def events(device, event_type):
    return list(DeviceEvent.objects.filter(device=device, event_type=event_type))


def test_a_firmware_execution_puts_the_device_in_maintenance_and_back(device):
    queue(make_job("fw", firmware=make_firmware()), device)
    service.start_next(device.device_id, body(statusDetails={"step": "download"}), now=now())
    device.refresh_from_db()
    assert device.status == DeviceStatus.MAINTENANCE
    [started] = events(device, "firmware_update_initiated")
    assert started.actor == f"device:{device.device_id}"
    assert started.event_data["status_details"] == {"step": "download"}
    update(device, "fw", status="SUCCEEDED", statusDetails={"version": "2.0.0"})
    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE
    # Reported, not yet confirmed: the device has not said it runs 2.0.0 (issue 12 point 7).
    assert events(device, "firmware_update_success") == []

    engine.note_reported_versions({device.pk: "2.0.0"})

    [success] = events(device, "firmware_update_success")
    assert success.event_data["status_details"] == {"version": "2.0.0"}
    assert success.event_data["firmware_version"] == "2.0.0"


def test_a_success_reported_by_a_device_already_on_the_version_is_confirmed_at_once(device):
    Device.objects.filter(pk=device.pk).update(firmware_version="2.0.0")
    queue(make_job("fw", firmware=make_firmware()), device)
    update(device, "fw", status="IN_PROGRESS")
    update(device, "fw", status="SUCCEEDED")

    [success] = events(device, "firmware_update_success")
    assert JobExecution.objects.get(job__job_id="fw").confirmed_at is not None
    assert success.actor == f"device:{device.device_id}"


def test_a_failed_firmware_execution_is_recorded_with_its_details(device):
    queue(make_job("fw", firmware=make_firmware()), device)
    update(device, "fw", status="IN_PROGRESS")
    update(device, "fw", status="FAILED", statusDetails={"reason": "checksum"})
    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE
    [failed] = events(device, "firmware_update_failed")
    assert failed.event_data["status_details"] == {"reason": "checksum"}


def test_a_registered_confirmation_takes_the_reported_success(device):
    seen = []

    def confirm(execution, actor):
        seen.append((execution.job.job_id, execution.status, actor))

    firmware_runs.confirm_with(confirm)
    try:
        queue(make_job("fw", firmware=make_firmware()), device)
        update(device, "fw", status="SUCCEEDED")
    finally:
        firmware_runs.stop_confirming(confirm)
    assert seen == [("fw", "SUCCEEDED", f"device:{device.device_id}")]
    assert events(device, "firmware_update_success") == []


def test_a_plain_job_leaves_the_device_status_alone(device):
    queue(make_job("reboot"), device)
    service.start_next(device.device_id, b"", now=now())
    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE
    assert events(device, "firmware_update_initiated") == []


# --- error documents ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_class", "code", "status"),
    [
        (errors.InvalidTopic, "InvalidTopic", 400),
        (errors.InvalidJson, "InvalidJson", 400),
        (errors.InvalidRequest, "InvalidRequest", 400),
        (errors.InvalidStateTransition, "InvalidStateTransition", 409),
        (errors.ResourceNotFound, "ResourceNotFound", 404),
        (errors.VersionMismatch, "VersionMismatch", 409),
        (errors.TerminalStateReached, "TerminalStateReached", 410),
        (errors.RequestThrottled, "RequestThrottled", 429),
        (errors.InternalError, "InternalError", 503),
    ],
)
def test_each_error_maps_to_its_code_and_http_status(error_class, code, status):
    error = error_class("why", execution_state={"status": "QUEUED", "versionNumber": 1})
    assert errors.rejected_document(error, client_token="c", timestamp=5) == {
        "code": code,
        "message": "why",
        "executionState": {"status": "QUEUED", "versionNumber": 1},
        "clientToken": "c",
        "timestamp": 5,
    }
    assert errors.http_error(error) == (
        status,
        {
            "code": code,
            "message": "why",
            "executionState": {"status": "QUEUED", "versionNumber": 1},
        },
    )
