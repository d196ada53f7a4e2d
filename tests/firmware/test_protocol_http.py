"""The jobs protocol on the HTTP device API (device-protocol.md §2.1-2.3), with device JWTs."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from firmware.choices import ExecutionStatus as S
from firmware.models import JobExecution
from firmware.protocol import service
from tests.devices.credential_helpers import (
    bearer,
    credentialed,
    pki_ready,  # noqa: F401
)
from tests.firmware.jobs_helpers import clear_outbox, make_job, queue, sent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]


@pytest.fixture
def device():
    return credentialed("jobs-http-1", status="active")


def call(device, method: str, path: str = "", body: dict | bytes | None = None, *, thing=None):
    url = f"/device/v1/things/{thing or device.device_id}/jobs{path}"
    data = orjson.dumps(body) if isinstance(body, dict) else body
    kwargs = bearer(device.jwt())
    if data is not None:
        kwargs.update(data=data, content_type="application/json")
    return getattr(APIClient(), method)(url, **kwargs)


def test_a_device_runs_a_job_over_http(device):
    queue(make_job("h", document={"operation": "reboot"}), device.device)
    clear_outbox()
    pending = call(device, "get")
    assert pending.status_code == 200, pending.content
    assert [s["jobId"] for s in pending.json()["queuedJobs"]] == ["h"]

    started = call(device, "put", "/$next", {"statusDetails": {"step": "1"}, "clientToken": "t"})
    assert started.status_code == 200, started.content
    execution = started.json()["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("IN_PROGRESS", 2)
    assert orjson.loads(execution["jobDocument"]) == {"operation": "reboot"}  # a string (§2.2)
    assert started.json()["clientToken"] == "t"

    described = call(device, "get", "/h?includeJobDocument=false")
    assert described.status_code == 200 and "jobDocument" not in described.json()["execution"]

    done = call(
        device,
        "post",
        "/h",
        {"status": "SUCCEEDED", "expectedVersion": "2", "includeJobDocument": True},
    )
    assert done.status_code == 200, done.content
    assert isinstance(done.json()["jobDocument"], str)
    assert JobExecution.objects.get().status == S.SUCCEEDED
    # Notifications exist only over MQTT, but an HTTP update still sends them there.
    assert len(sent("/jobs/notify")) == 1


def test_refusals_carry_the_http_status_of_their_code(device):
    queue(make_job("h"), device.device, version_number=4)
    queue(make_job("over"), device.device, status=S.CANCELED)
    cases = [
        ("post", "/h", b"{nope", 400, "InvalidJson"),
        (
            "post",
            "/h",
            {"status": "IN_PROGRESS", "statusDetails": {"k": ""}},
            400,
            "InvalidRequest",
        ),
        ("post", "/missing", {"status": "IN_PROGRESS"}, 404, "ResourceNotFound"),
        ("post", "/h", {"status": "IN_PROGRESS", "expectedVersion": 3}, 409, "VersionMismatch"),
        ("post", "/over", {"status": "SUCCEEDED"}, 409, "InvalidStateTransition"),
        ("get", "/over", None, 410, "TerminalStateReached"),
        ("get", "/h?executionNumber=zero", None, 400, "InvalidRequest"),
        ("put", "/h", {}, 400, "InvalidRequest"),
    ]
    for method, path, body, status, code in cases:
        response = call(device, method, path, body)
        assert (response.status_code, response.json()["code"]) == (status, code), (path, body)
    mismatch = call(device, "post", "/h", {"status": "IN_PROGRESS", "expectedVersion": 3})
    assert mismatch.json()["executionState"] == {"status": "QUEUED", "versionNumber": 4}


def test_a_device_may_not_address_another_thing(device):
    other = credentialed("jobs-http-2", status="active")
    queue(make_job("theirs"), other.device)
    response = call(device, "get", thing=other.device_id)
    assert (response.status_code, response.json()["code"]) == (403, "AccessDenied")


def test_without_a_jwt_the_answer_is_401():
    response = APIClient().get("/device/v1/things/jobs-http-3/jobs")
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


SECONDS = "approximateSecondsBeforeTimedOut"


def test_a_running_timer_shows_as_approximate_seconds_before_timed_out(device):
    queue(make_job("timed", timeout_config={"in_progress_timeout_in_minutes": 30}), device.device)
    queued = call(device, "get", "/timed").json()["execution"]
    assert SECONDS not in queued  # no timer runs while QUEUED

    # start-next with a step timer: the earlier of the two deadlines, from this very request.
    started = call(device, "put", "/$next", {"stepTimeoutInMinutes": 10}).json()["execution"]
    assert started[SECONDS] == 600
    # The step timer cleared: the in-progress timeout is what is left.
    update = {"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1, "includeJobExecutionState": True}
    updated = call(device, "post", "/timed", update).json()
    assert SECONDS not in updated["executionState"]  # JobExecutionState has no such field
    for path in ("/timed", "/$next"):
        left = call(device, "get", path).json()["execution"][SECONDS]
        assert 30 * 60 - 5 <= left <= 30 * 60

    # Past the deadline, before the engine's tick times it out: 0, not a negative number.
    JobExecution.objects.update(in_progress_deadline=timezone.now() - timedelta(seconds=30))
    assert call(device, "get", "/timed").json()["execution"][SECONDS] == 0

    # Over MQTT the execution never carries it (the SDK's JobExecutionData has no such field).
    mqtt = service.describe(device.device_id, "timed", b"{}", now=timezone.now())
    assert SECONDS not in mqtt["execution"]

    # A job without a timeout, started without a step timer: no timer, no field.
    call(device, "post", "/timed", {"status": "SUCCEEDED"})
    queue(make_job("untimed"), device.device)
    started = call(device, "put", "/$next", {}).json()["execution"]
    assert (started["jobId"], started["status"]) == ("untimed", "IN_PROGRESS")
    assert SECONDS not in started
