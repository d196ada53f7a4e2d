"""Where the rollout's parts meet: a device's retry budget reset by an operator, in-flight
devices of an abort_keep rollout still ending by their deadlines, one approval rule for the
start and the gates (by login or token), wave jobs naming their rollout."""

import pytest

from firmware.models import Job, JobExecution, JobTarget
from firmware.rollouts import control, services
from firmware.rollouts import engine as rollouts
from firmware.rollouts.models import RolloutDevice, RolloutEvent, Wave
from tests.conftest import make_user, token_client
from tests.firmware.helpers import at, finish, make_version, start
from tests.firmware.rollouts import helpers
from tests.firmware.rollouts.helpers import group_of
from tests.firmware.rollouts.test_engine import (
    _thirty_percent_fail,
    fleet,
    make_rollout,
    outcomes,
    succeed,
)

pytestmark = pytest.mark.django_db
ONE_RETRY = {"criteria_list": [{"failure_type": "FAILED", "number_of_retries": 1}]}


def fail(execution, now):
    start(execution, now)
    finish(execution, "FAILED", now)


def latest_of(device_pk):
    return JobExecution.objects.filter(device_id=device_pk).order_by("-execution_number").first()


def failed_for_good(**fields):
    """Two devices in one wave: the first failed, was retried once (its budget) and failed
    again; the second is still queued, so the wave's job still runs."""
    rollout = make_rollout(fleet(2), [(2, {})], retry_config=ONE_RETRY, **fields)
    rollouts.tick(at(0))
    entry = RolloutDevice.objects.order_by("device__device_id").first()
    fail(latest_of(entry.device_id), at(1))
    rollouts.tick(at(2))
    fail(latest_of(entry.device_id), at(3))
    rollouts.tick(at(4))
    entry.refresh_from_db()
    assert (entry.outcome, entry.retries_used) == ("failed", 1)
    return rollout, entry


def attempts(entry):
    return JobExecution.objects.filter(device_id=entry.device_id).count()


# --- Retry budget reset per device -----------------------------------------------------------


def test_reset_retries_gives_a_failed_device_its_whole_budget_again():
    _rollout, entry = failed_for_good(failure_threshold_count=5)
    entry = control.reset_retries(entry, actor="carol", reason="cable fixed", now=at(5))
    assert (entry.outcome, entry.retries_used) == ("in_progress", 0)
    rollouts.tick(at(6))
    assert attempts(entry) == 3  # retried at once: the fresh budget's one retry
    fail(latest_of(entry.device_id), at(7))
    rollouts.tick(at(8))
    assert attempts(entry) == 3  # and then spent
    entry.refresh_from_db()
    assert (entry.outcome, entry.failure, entry.retries_used) == ("failed", "FAILED", 1)
    event = RolloutEvent.objects.get(kind="retries_reset")
    assert (event.actor, event.reason) == ("carol", "cable fixed")
    assert event.details["retries_used"] == 1 and event.details["retried"] is True


def test_reset_retries_of_an_in_progress_device_only_resets_its_budget():
    make_rollout(fleet(1), [(1, {})], retry_config=ONE_RETRY)
    rollouts.tick(at(0))
    entry = RolloutDevice.objects.get()
    fail(latest_of(entry.device_id), at(1))
    rollouts.tick(at(2))
    entry = control.reset_retries(entry, actor="carol", now=at(3))
    assert (entry.outcome, entry.retries_used) == ("notified", 0)
    assert JobTarget.objects.get().retry_offset == 1
    fail(latest_of(entry.device_id), at(4))
    rollouts.tick(at(5))
    assert attempts(entry) == 3  # without the reset it would have ended after two


def test_reset_retries_is_refused_before_the_wave_and_after_the_rollout():
    rollout = make_rollout(fleet(2), [(1, {}), (1, {})])
    second = RolloutDevice.objects.get(wave__number=2)
    with pytest.raises(control.RetryResetError, match="not reached"):
        control.reset_retries(second, actor="carol")
    control.abort(rollout, actor="carol", reason="enough", force=True)
    with pytest.raises(control.RetryResetError, match="aborted"):
        control.reset_retries(RolloutDevice.objects.get(wave__number=1), actor="carol")
    assert not RolloutEvent.objects.filter(kind="retries_reset").exists()


def test_reset_retries_over_rest_records_the_operator(operator, viewer_api):
    _, entry = failed_for_good(failure_threshold_count=5)
    url = f"/api/v1/rollouts/r1/devices/{entry.device.device_id}/reset-retries/"
    assert viewer_api.post(url, {}, format="json").status_code == 403
    api = token_client(operator)
    response = api.post(url, {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["retries_used"] == 0 and response.json()["outcome"] == "in_progress"
    assert RolloutEvent.objects.get(kind="retries_reset").actor == f"token:{operator.username}"
    assert api.post(url.replace("/d-", "/x-"), {}, format="json").status_code == 404


def test_reset_retries_of_a_finished_rollout_is_409_naming_the_state(operator):
    rollout, entry = failed_for_good(failure_threshold_count=5)
    control.abort(rollout, actor="carol", reason="enough", force=False)
    url = f"/api/v1/rollouts/r1/devices/{entry.device.device_id}/reset-retries/"
    response = token_client(operator).post(url, {}, format="json")
    assert response.status_code == 409 and "aborted" in response.json()["status"][0]
    entry.refresh_from_db()
    assert entry.retries_used == 1 and not JobTarget.objects.filter(retry_offset__gt=0).exists()


# --- No device stuck after abort_keep --------------------------------------------------------


def test_abort_keep_in_flight_success_without_the_version_ends_not_confirmed(settings):
    settings.FIRMWARE_CONFIRM_MINUTES = 5
    rollout, executions = _thirty_percent_fail("abort_keep")
    finish(executions[9], "SUCCEEDED", at(8))  # but the device keeps 1.0.0
    rollouts.tick(at(9))
    device = RolloutDevice.objects.get(device_id=executions[9].device_id)
    assert device.outcome == "in_progress"  # within the confirmation deadline
    rollouts.tick(at(minutes=6))
    device.refresh_from_db()
    assert (device.outcome, device.failure) == ("failed", "NOT_CONFIRMED")
    assert Wave.objects.get(rollout=rollout, number=2).status == "halted"
    assert "in_progress" not in outcomes(rollout, 2) + outcomes(rollout, 1)
    assert JobExecution.objects.filter(device_id=executions[9].device_id).count() == 1


def test_abort_during_a_soak_still_verifies_the_reported_devices():
    rollout = make_rollout(fleet(2), [(1, {"soak_minutes": 30}), (1, {})])
    rollouts.tick(at(0))
    succeed(rollout, 1, at(1))
    rollouts.tick(at(2))
    assert Wave.objects.get(rollout=rollout, number=1).status == "soaking"
    assert outcomes(rollout, 1) == ["reported"]
    control.abort(rollout, actor="carol", reason="enough", force=False)
    rollouts.tick(at(minutes=31))  # the soak is over: the health check settles the device
    assert outcomes(rollout, 1) == ["updated"] and outcomes(rollout, 2) == ["canceled"]
    assert Wave.objects.get(rollout=rollout, number=1).status == "halted"


# --- One approval rule -----------------------------------------------------------------------


def awaiting_gate(**fields):
    rollout = make_rollout(fleet(2), [(1, {"gate": "manual"}), (1, {})], **fields)
    rollouts.tick(at(0))
    succeed(rollout, 1, at(1))
    for t in (2, 4):
        rollouts.tick(at(t))
    wave = Wave.objects.get(rollout=rollout, number=1)
    assert wave.status == "awaiting_approval"
    return rollout, wave


def test_the_creator_cannot_approve_a_gate_by_login_or_by_token():
    _rollout, wave = awaiting_gate(created_by="token:otto", approval_required=True)
    for actor in ("otto", "token:otto"):
        with pytest.raises(services.SelfApproval, match="someone else"):
            control.approve_gate(wave, actor=actor, now=at(5))
    assert Wave.objects.get(pk=wave.pk).status == "awaiting_approval"
    control.approve_gate(wave, actor="ada", now=at(6))
    assert Wave.objects.get(pk=wave.pk).status == "passed"


def test_the_creator_approves_a_gate_when_no_approval_is_required():
    _rollout, wave = awaiting_gate(created_by="otto")
    control.approve_gate(wave, actor="otto", now=at(5))
    assert Wave.objects.get(pk=wave.pk).status == "passed"


def test_the_creator_cannot_approve_the_start_with_a_token_either():
    firmware = make_version("2.0.0")
    group_of(helpers.fleet(3))
    rollout = services.create_rollout(
        helpers.fields(firmware, approval_required=True), actor="token:otto"
    )
    rollout = services.request_start(rollout, actor="token:otto")
    with pytest.raises(services.SelfApproval):
        services.approve(rollout, actor="otto")
    rollout.refresh_from_db()
    assert rollout.status == "awaiting_approval" and rollout.approved_by == ""


def test_the_gate_over_rest_refuses_the_creator_403_and_takes_an_approver(operator, fleet_admin):
    awaiting_gate(created_by=f"token:{operator.username}", approval_required=True)
    url = "/api/v1/rollouts/r1/waves/1/approve/"
    refused = token_client(operator).post(url, {}, format="json")
    assert refused.status_code == 403 and "someone else" in refused.json()["approved_by"][0]
    viewer = token_client(make_user("val", "Fleet viewer"))
    assert viewer.post(url, {}, format="json").status_code == 403
    admin = token_client(fleet_admin)
    approved = admin.post(url, {}, format="json")
    assert approved.status_code == 200
    assert approved.json()["waves"][0]["status"] == "passed"
    assert admin.post(url, {}, format="json").status_code == 409


# --- Wave jobs name their rollout ------------------------------------------------------------


def test_a_wave_job_names_its_rollout_and_a_plain_job_none():
    rollout = make_rollout(fleet(1), [(1, {})])
    rollouts.tick(at(0))
    assert Job.objects.get(wave__rollout=rollout).rollout_id == rollout.pk
