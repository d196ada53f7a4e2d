"""The jobs REST API: CreateJob, DescribeJob, CancelJob, executions, templates; roles; bad input
refused with the field named and nothing created."""

from datetime import timedelta

import pytest
from django.utils import timezone

from firmware import engine
from firmware.models import Job, JobExecution, JobTarget, JobTemplate
from tests.conftest import make_device, make_group
from tests.firmware.helpers import executions_of, finish, make_version, start

pytestmark = pytest.mark.django_db
URL = "/api/v1/jobs/"


def body(**fields):
    return {
        "job_id": "reboot-1",
        "targets": {"devices": ["dev-a"]},
        "document": {"op": "reboot"},
        **fields,
    }


@pytest.fixture
def device():
    return make_device("dev-a", firmware_version="1.0.0")


def test_an_operator_creates_a_job_and_describes_it(operator_api, device):
    answer = operator_api.post(URL, body(rollout={"maximum_per_minute": 100}), format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["targets"] == {"devices": ["dev-a"], "groups": []}
    assert answer.json()["created_by"] == "token:otto"
    engine.tick()
    described = operator_api.get(f"{URL}reboot-1/").json()
    assert described["status"] == "IN_PROGRESS"
    assert described["rollout"] == {"maximum_per_minute": 100}
    assert described["job_process_details"]["number_of_queued_things"] == 1


def test_a_viewer_reads_but_cannot_create_or_cancel(viewer_api, operator_api, device):
    assert viewer_api.post(URL, body(), format="json").status_code == 403
    operator_api.post(URL, body(), format="json")
    assert viewer_api.get(URL).status_code == 200
    assert viewer_api.post(f"{URL}reboot-1/cancel/", {}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"targets": {"devices": [], "groups": []}}, "targets"),
        ({"targets": {"devices": ["nobody"]}}, "targets"),
        ({"targets": {"groups": ["no-such-group"]}}, "targets"),
        ({"document": {}}, "document"),
        ({"document": {"blob": "x" * 33000}}, "document"),
        ({"document": None}, "document"),
        ({"job_id": "has spaces"}, "job_id"),
        ({"rollout": {"maximum_per_minute": 1001}}, "rollout"),
        ({"rollout": {"maximum_per_minute": 0}}, "rollout"),
        (
            {
                "rollout": {
                    "exponential_rate": {
                        "base_rate_per_minute": 10,
                        "increment_factor": 5.5,
                        "rate_increase_criteria": {"number_of_notified_things": 10},
                    }
                }
            },
            "rollout",
        ),
        (
            {
                "abort": {
                    "criteria_list": [
                        {
                            "failure_type": "FAILED",
                            "action": "CANCEL",
                            "threshold_percentage": 100.5,
                            "min_number_of_executed_things": 1,
                        }
                    ]
                }
            },
            "abort",
        ),
        ({"timeout": {"in_progress_timeout_in_minutes": 10081}}, "timeout"),
        (
            {"retry": {"criteria_list": [{"failure_type": "FAILED", "number_of_retries": 11}]}},
            "retry",
        ),
        ({"scheduling": {"start_time": "2001-01-01T00:00:00Z"}}, "scheduling"),
        ({"template": "nope", "document": None}, "template"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(
    operator_api, device, fields, field
):
    make_group("g")
    payload = {k: v for k, v in body(**fields).items() if v is not None}
    answer = operator_api.post(URL, payload, format="json")
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()
    assert not Job.objects.exists()


def test_a_duplicate_job_id_is_a_conflict(operator_api, device):
    operator_api.post(URL, body(), format="json")
    answer = operator_api.post(URL, body(), format="json")
    assert answer.status_code == 409
    assert answer.json()["code"] == "job_id_taken"


def test_cancel_with_force_cancels_in_progress_executions(operator_api, device):
    other = make_device("dev-b")
    operator_api.post(URL, body(targets={"devices": ["dev-a", "dev-b"]}), format="json")
    engine.tick()
    job = Job.objects.get()
    start(executions_of(job)[0], job.created_at)
    answer = operator_api.post(f"{URL}reboot-1/cancel/", {"comment": "wrong"}, format="json")
    assert answer.json()["status"] == "CANCELED"
    assert [e.status for e in executions_of(job)] == ["IN_PROGRESS", "CANCELED"]
    answer = operator_api.post(f"{URL}reboot-1/cancel/", {"force": True}, format="json")
    assert answer.status_code == 200
    assert [e.status for e in executions_of(job)] == ["CANCELED", "CANCELED"]
    assert answer.json()["canceled_by"] == "token:otto"
    # A third cancel has nothing to do: 409.
    assert (
        operator_api.post(f"{URL}reboot-1/cancel/", {"force": True}, format="json").status_code
        == 409
    )
    assert other.device_id == "dev-b"


def test_executions_per_job_and_per_device_and_cancel_one(operator_api, device):
    operator_api.post(URL, body(), format="json")
    engine.tick()
    listed = operator_api.get(f"{URL}reboot-1/executions/").json()["results"]
    assert [(e["device_id"], e["status"]) for e in listed] == [("dev-a", "QUEUED")]
    assert (
        operator_api.get("/api/v1/devices/dev-a/jobs/").json()["results"][0]["job_id"] == "reboot-1"
    )
    url = "/api/v1/devices/dev-a/jobs/reboot-1/cancel/"
    assert operator_api.post(url, {"expected_version": 5}, format="json").status_code == 409
    answer = operator_api.post(url, {}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "CANCELED"
    assert operator_api.post(url, {}, format="json").status_code == 409
    assert (
        operator_api.post("/api/v1/devices/dev-a/jobs/other/cancel/", {}, format="json").status_code
        == 404
    )


def test_a_firmware_job_refuses_other_device_types_and_downgrades(operator_api, device):
    version = make_version("0.9.0", security_version=1)
    make_version("1.0.0", security_version=2)  # what dev-a runs now
    make_device("dev-other", device_type="camera")
    fields = {"document": None, "firmware": str(version.pk)}
    payload = {k: v for k, v in body(**fields).items() if v is not None}
    answer = operator_api.post(
        URL, {**payload, "targets": {"devices": ["dev-other"]}}, format="json"
    )
    assert answer.status_code == 400 and "dev-other" in answer.json()["targets"][0]
    answer = operator_api.post(URL, payload, format="json")
    assert answer.status_code == 400 and "dev-a" in answer.json()["firmware"][0]
    allowed = {**payload, "allow_downgrade": True}
    assert operator_api.post(URL, allowed, format="json").json()["downgrade_reason"] == [
        "Say why the downgrade is allowed."
    ]
    answer = operator_api.post(URL, {**allowed, "downgrade_reason": "2.0 bricks"}, format="json")
    assert answer.status_code == 201
    job = answer.json()
    assert (job["downgrade_allowed_by"], job["downgrade_reason"]) == (
        "token:otto",
        "2.0 bricks",
    )
    files = job["document"]["afr_ota"]["files"][0]
    assert files["filesize"] == 1024 and files["update_data_url"].endswith("sensor-0.9.0.bin")
    assert job["document"]["firmware"]["sha256"] == "ab" * 32


def test_templates_are_managed_by_admins_and_fill_a_job(
    fleet_admin, admin_api, operator_api, device
):
    template = {
        "template_id": "reboot",
        "document": {"op": "reboot", "delay": "${parameters.delay}"},
        "timeout_config": {"in_progress_timeout_in_minutes": 5},
    }
    assert operator_api.post("/api/v1/job-templates/", template, format="json").status_code == 403
    assert admin_api.post("/api/v1/job-templates/", template, format="json").status_code == 201
    bad = {**template, "template_id": "x", "timeout_config": {"in_progress_timeout_in_minutes": 0}}
    assert "timeout_config" in admin_api.post("/api/v1/job-templates/", bad, format="json").json()
    payload = {"job_id": "t1", "targets": {"devices": ["dev-a"]}, "template": "reboot"}
    answer = operator_api.post(URL, payload, format="json")
    assert answer.status_code == 400 and "delay" in answer.json()["document_parameters"][0]
    answer = operator_api.post(
        URL, {**payload, "document_parameters": {"delay": "10"}}, format="json"
    )
    assert answer.status_code == 201
    assert answer.json()["document"] == {"op": "reboot", "delay": "10"}
    assert answer.json()["timeout"] == {"in_progress_timeout_in_minutes": 5}
    assert JobTemplate.objects.get().created_by == f"token:{fleet_admin.username}"


NIGHTLY = {"start_time": "cron(0 2 ? * MON-FRI *)", "duration_in_minutes": 120}


def test_a_templates_maintenance_windows_reach_the_jobs_made_from_it(
    admin_api, operator_api, device
):
    template = {
        "template_id": "nightly",
        "document": {"op": "reboot"},
        "scheduling_config": {"maintenance_windows": [NIGHTLY]},
    }
    assert admin_api.post("/api/v1/job-templates/", template, format="json").status_code == 201
    stored = admin_api.get("/api/v1/job-templates/nightly/").json()
    assert stored["scheduling_config"] == {"maintenance_windows": [NIGHTLY]}

    def create(job_id, **fields):
        payload = {"job_id": job_id, "targets": {"devices": ["dev-a"]}, "template": "nightly"}
        answer = operator_api.post(URL, {**payload, **fields}, format="json")
        assert answer.status_code == 201, answer.json()
        return answer.json()

    inherited = create("plain")
    assert inherited["scheduling"] == {"maintenance_windows": [NIGHTLY]}
    assert inherited["status"] == "IN_PROGRESS"  # no start time: gated by the windows only
    later = (timezone.now() + timedelta(hours=2)).isoformat()
    scheduled = create("later", scheduling={"start_time": later})
    assert scheduled["scheduling"] == {"start_time": later, "maintenance_windows": [NIGHTLY]}
    assert scheduled["status"] == "SCHEDULED"
    own = {"start_time": "cron(30 4 ? * SAT *)", "duration_in_minutes": 30}
    overridden = create("weekend", scheduling={"maintenance_windows": [own]})
    assert overridden["scheduling"] == {"maintenance_windows": [own]}


@pytest.mark.parametrize(
    ("scheduling", "said"),
    [
        ({"start_time": "2031-01-01T00:00:00Z"}, "start_time: A template holds only"),
        ({"maintenance_windows": [{**NIGHTLY, "start_time": "0 2 * * 1"}]}, "AWS cron"),
        ({"maintenance_windows": [{**NIGHTLY, "duration_in_minutes": 1431}]}, "1 to 1430"),
        ({"maintenance_windows": []}, "non-empty list"),
        ([NIGHTLY], "Must be an object"),
    ],
)
def test_a_templates_bad_scheduling_is_refused_naming_it(admin_api, scheduling, said):
    template = {"template_id": "bad", "document": {"op": "x"}, "scheduling_config": scheduling}
    answer = admin_api.post("/api/v1/job-templates/", template, format="json")
    assert answer.status_code == 400
    assert said in " ".join(answer.json()["scheduling_config"])
    assert not JobTemplate.objects.exists()


def test_a_job_from_a_template_with_a_bad_schedule_creates_nothing(operator_api, device):
    JobTemplate.objects.create(
        template_id="nightly",
        document={"op": "reboot"},
        scheduling_config={"maintenance_windows": [NIGHTLY]},
    )
    payload = {"job_id": "t1", "targets": {"devices": ["dev-a"]}, "template": "nightly"}
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    answer = operator_api.post(URL, {**payload, "scheduling": {"start_time": past}}, format="json")
    assert answer.status_code == 400
    assert answer.json()["scheduling"] == ["start_time: Must be 30 minutes to one year from now."]
    assert not Job.objects.exists() and not JobTarget.objects.exists()


def test_describe_counts_each_status_in_one_query(
    operator_api, device, django_assert_max_num_queries
):
    make_device("dev-b")
    operator_api.post(URL, body(targets={"devices": ["dev-a", "dev-b"]}), format="json")
    engine.tick()
    finish(JobExecution.objects.first(), "FAILED", Job.objects.get().created_at)
    details = operator_api.get(f"{URL}reboot-1/").json()["job_process_details"]
    assert (details["number_of_failed_things"], details["number_of_queued_things"]) == (1, 1)
