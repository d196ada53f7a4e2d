"""The admin's "Add job" page: it creates through the same service as POST /api/v1/jobs/ (same
refusals, same stored job), puts each refusal on the field the operator filled, leaves nothing
behind when it refuses, and is open to those who may run jobs only."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.utils import timezone

from firmware.models import Job, JobTarget, JobTemplate
from tests.conftest import make_device, make_group
from tests.firmware.helpers import job_form as form
from tests.firmware.helpers import make_version

pytestmark = pytest.mark.django_db
ADD = "/admin/firmware/job/add/"
REACH = "/admin/firmware/job/reach/"


@pytest.fixture
def fleet():
    """Three sensors in building-a, and sensor firmware 2.0.0."""
    group = make_group("building-a")
    for n in range(3):
        make_device(f"sensor-{n}", group=group, firmware_version="1.0.0")
    return group, make_version("2.0.0", security_version=1)


def errors(answer) -> dict:
    assert answer.status_code == 200, answer.status_code
    return answer.context["adminform"].form.errors


def nothing_created() -> bool:
    return not Job.objects.exists() and not JobTarget.objects.exists()


def test_an_operator_creates_a_firmware_job_for_a_group_with_a_rate(client, operator, fleet):
    group, version = fleet
    client.force_login(operator)
    answer = client.post(
        ADD,
        form(run="firmware", firmware=version.pk, groups=[group.pk], maximum_per_minute="2"),
    )
    assert answer.status_code == 302 and answer.url == "/admin/firmware/job/"
    job = Job.objects.get()
    assert (job.job_id, job.firmware, job.status) == ("job-1", version, "IN_PROGRESS")
    assert job.rollout_config == {"maximum_per_minute": 2}
    assert list(job.target_groups.all()) == [group] and job.target_count == 3
    assert job.document["firmware"]["version"] == "2.0.0"
    assert job.created_by == "otto"
    entry = LogEntry.objects.get(object_id=str(job.pk))
    assert (entry.user, entry.action_flag) == (operator, ADDITION)


def test_the_admin_stores_what_the_api_stores(client, operator, operator_api, fleet):
    group, _ = fleet
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    client.force_login(operator)
    answer = client.post(
        ADD,
        form(
            description="reboot the building",
            groups=[group.pk],
            devices=[make_device("lone").pk],
            target_selection="CONTINUOUS",
            maximum_per_minute="50",
            base_rate_per_minute="5",
            increment_factor="1.5",
            increase_every="10",
            increase_on="succeeded",
            abort_failed="12.5",
            abort_failed_executed="10",
            abort_all="30",
            abort_all_executed="20",
            in_progress_timeout="60",
            retry_timed_out="2",
            retry_failed="1",
            start_time_0=start.date().isoformat(),
            start_time_1=start.time().isoformat(),
            maintenance_windows="cron(0 2 ? * MON-FRI *) 120\ncron(30 22 ? * SAT *) 60",
        ),
    )
    assert answer.status_code == 302, errors(answer)
    api = {
        "job_id": "job-2",
        "description": "reboot the building",
        "document": {"operation": "reboot"},
        "targets": {"devices": ["lone"], "groups": ["building-a"]},
        "target_selection": "CONTINUOUS",
        "rollout": {
            "maximum_per_minute": 50,
            "exponential_rate": {
                "base_rate_per_minute": 5,
                "increment_factor": 1.5,
                "rate_increase_criteria": {"number_of_succeeded_things": 10},
            },
        },
        "abort": {
            "criteria_list": [
                {
                    "failure_type": "FAILED",
                    "action": "CANCEL",
                    "threshold_percentage": 12.5,
                    "min_number_of_executed_things": 10,
                },
                {
                    "failure_type": "ALL",
                    "action": "CANCEL",
                    "threshold_percentage": 30,
                    "min_number_of_executed_things": 20,
                },
            ]
        },
        "timeout": {"in_progress_timeout_in_minutes": 60},
        "retry": {
            "criteria_list": [
                {"failure_type": "FAILED", "number_of_retries": 1},
                {"failure_type": "TIMED_OUT", "number_of_retries": 2},
            ]
        },
        "scheduling": {
            "start_time": start.isoformat(),
            "maintenance_windows": [
                {"start_time": "cron(0 2 ? * MON-FRI *)", "duration_in_minutes": 120},
                {"start_time": "cron(30 22 ? * SAT *)", "duration_in_minutes": 60},
            ],
        },
    }
    assert operator_api.post("/api/v1/jobs/", api, format="json").status_code == 201
    by_admin, by_api = (
        operator_api.get(f"/api/v1/jobs/{job_id}/").json() for job_id in ("job-1", "job-2")
    )
    different = {"job_id", "created_by", "created_at", "updated_at"}
    assert {k: v for k, v in by_admin.items() if k not in different} == {
        k: v for k, v in by_api.items() if k not in different
    }
    assert by_admin["status"] == "SCHEDULED" and by_admin["created_by"] == "otto"


def test_a_rate_out_of_range_is_shown_on_its_field_and_creates_nothing(client, operator, fleet):
    group, version = fleet
    client.force_login(operator)
    answer = client.post(
        ADD,
        form(run="firmware", firmware=version.pk, groups=[group.pk], maximum_per_minute="5000"),
    )
    assert errors(answer) == {"maximum_per_minute": ["Must be an integer from 1 to 1000."]}
    page = answer.content.decode()
    assert 'class="form-row errors field-maximum_per_minute"' in page
    assert nothing_created()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"increment_factor": "1.55", "base_rate_per_minute": "5", "increase_every": "3"},
            "increment_factor",
        ),
        ({"base_rate_per_minute": "5", "increase_every": "3"}, "increment_factor"),
        ({"base_rate_per_minute": "5", "increment_factor": "2"}, "increase_every"),
        ({"abort_timed_out": "150", "abort_timed_out_executed": "5"}, "abort_timed_out"),
        ({"abort_timed_out": "15"}, "abort_timed_out_executed"),
        ({"abort_rejected": "10", "abort_rejected_executed": "0"}, "abort_rejected_executed"),
        ({"abort_rejected_executed": "5"}, "abort_rejected"),
        ({"in_progress_timeout": "20000"}, "in_progress_timeout"),
        ({"retry_timed_out": "2"}, "retry_timed_out"),
        ({"retry_failed": "11"}, "retry_failed"),
        ({"retry_failed": "6", "retry_all": "6"}, "retry_failed"),
        ({"maintenance_windows": "cron(0 2 * * ? *)"}, "maintenance_windows"),
        ({"start_time_0": "2020-01-01", "start_time_1": "10:00"}, "start_time"),
        ({"end_behavior": "CANCEL"}, "end_behavior"),
    ],
)
def test_each_config_refusal_is_shown_on_the_field_filled(client, operator, fleet, fields, field):
    group, _ = fleet
    client.force_login(operator)
    answer = client.post(ADD, form(groups=[group.pk], **fields))
    refused = errors(answer)
    assert field in refused, refused
    # Shown, not folded away in a collapsed section.
    assert "<details>" not in answer.content.decode()
    # The operator reads the field's problem, not the API's path to it.
    assert not any(re.match(r"[a-z_]+[\[.:]", message) for message in refused[field])
    assert nothing_created()


def test_a_bad_maintenance_window_names_its_line(client, operator, fleet):
    group, _ = fleet
    start = timezone.now() + timedelta(days=1)
    client.force_login(operator)
    refused = errors(
        client.post(
            ADD,
            form(
                groups=[group.pk],
                start_time_0=start.date().isoformat(),
                start_time_1="10:00",
                maintenance_windows="cron(0 2 * * ? *) 60\ncron(0 3 * * ? *) 5000",
            ),
        )
    )
    assert refused["maintenance_windows"] == [
        "Line 2: duration_in_minutes: Must be an integer from 1 to 1430."
    ]


def test_target_refusals_are_shown_on_the_targets(client, operator, fleet):
    _, version = fleet
    camera = make_device("cam-1", device_type="camera")
    client.force_login(operator)
    refused = errors(client.post(ADD, form()))
    assert refused == {"devices": ["A job needs at least one device or group."]}
    refused = errors(
        client.post(ADD, form(run="firmware", firmware=version.pk, devices=[camera.pk]))
    )
    assert refused == {"devices": ["Not sensor: cam-1."]}
    gone = make_device("old-1", status="decommissioned")
    refused = errors(client.post(ADD, form(devices=[gone.pk])))
    assert refused == {"devices": ["Decommissioned: old-1."]}
    assert nothing_created()


def test_a_downgrade_needs_its_box_and_a_reason_and_is_recorded(client, operator, fleet):
    group, _ = fleet
    make_version("1.0.0", security_version=3)  # what the sensors run
    older = make_version("0.9.0", security_version=2)
    client.force_login(operator)
    fields = form(run="firmware", firmware=older.pk, groups=[group.pk])
    refused = errors(client.post(ADD, fields))
    assert list(refused) == ["firmware"] and "sensor-0" in refused["firmware"][0]
    refused = errors(client.post(ADD, {**fields, "allow_downgrade": "on"}))
    assert refused == {"downgrade_reason": ["Say why the downgrade is allowed."]}
    assert nothing_created()
    reason = {"allow_downgrade": "on", "downgrade_reason": "1.0.0 drains batteries"}
    assert client.post(ADD, {**fields, **reason}).status_code == 302
    job = Job.objects.get()
    assert (job.downgrade_allowed_by, job.downgrade_reason) == ("otto", "1.0.0 drains batteries")


def test_a_template_job_takes_its_parameters_as_lines(client, operator, fleet):
    group, _ = fleet
    JobTemplate.objects.create(
        template_id="reboot",
        document={"op": "reboot", "delay": "${parameters.delay}"},
        rollout_config={"maximum_per_minute": 10},
    )
    client.force_login(operator)
    fields = form(run="template", template="reboot", groups=[group.pk])
    page = client.get(ADD).content.decode()
    assert "reboot (parameters: delay)" in page
    assert errors(client.post(ADD, fields)) == {"document_parameters": ["Missing: delay."]}
    refused = errors(client.post(ADD, {**fields, "document_parameters": "delay 30"}))
    assert refused == {"document_parameters": ["Line 1: write name=value."]}
    assert nothing_created()
    assert client.post(ADD, {**fields, "document_parameters": "delay=30"}).status_code == 302
    job = Job.objects.get()
    assert job.document == {"op": "reboot", "delay": "30"}
    assert job.document_parameters == {"delay": "30"}
    assert job.rollout_config == {"maximum_per_minute": 10}  # the template's default


def test_what_to_run_must_be_given(client, operator, fleet):
    group, _ = fleet
    client.force_login(operator)
    refused = errors(client.post(ADD, form(run="firmware", groups=[group.pk])))
    assert refused == {"firmware": ["Choose the firmware to run."]}
    refused = errors(client.post(ADD, form(document="[]", groups=[group.pk])))
    assert refused == {"document": ["Must be a non-empty JSON object."]}
    # Only the chosen kind is sent: a document left in its box does not spoil a firmware job.
    _, version = fleet
    fields = form(run="firmware", firmware=version.pk, groups=[group.pk], document="[]")
    assert client.post(ADD, fields).status_code == 302


def test_a_job_id_taken_is_refused_on_its_field(client, operator, fleet):
    group, _ = fleet
    client.force_login(operator)
    assert client.post(ADD, form(groups=[group.pk])).status_code == 302
    refused = errors(client.post(ADD, form(groups=[group.pk])))
    assert refused == {"job_id": ["A job with the id 'job-1' exists."]}
    assert Job.objects.count() == 1


def test_a_viewer_cannot_reach_the_form(client, viewer, fleet):
    group, _ = fleet
    client.force_login(viewer)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, form(groups=[group.pk])).status_code == 403
    assert client.get(REACH, {"groups": group.pk}).status_code == 403
    assert ADD not in client.get("/admin/firmware/job/").content.decode()
    assert nothing_created()


def test_run_as_a_job_opens_the_form_with_the_version_chosen(client, operator, viewer, fleet):
    _, version = fleet
    client.force_login(viewer)
    page = client.get(f"/admin/firmware/firmwareversion/{version.pk}/change/").content.decode()
    assert "Run as a job" not in page
    client.force_login(operator)
    page = client.get(f"/admin/firmware/firmwareversion/{version.pk}/change/").content.decode()
    assert f'href="{ADD}?firmware={version.pk}"' in page
    chosen = client.get(ADD, {"firmware": version.pk}).context["adminform"].form
    assert chosen["firmware"].value() == str(version.pk)
    assert chosen["run"].value() == "firmware"
    assert chosen["job_id"].value().startswith("sensor-2-0-0-")


def test_the_form_lists_no_devices_and_costs_the_same_for_any_fleet(
    client, operator, fleet, django_assert_max_num_queries
):
    client.force_login(operator)
    with django_assert_max_num_queries(12):
        page = client.get(ADD).content.decode()
    assert "sensor-0" not in page
    search = {"app_label": "firmware", "model_name": "job", "field_name": "target_devices"}
    found = client.get("/admin/autocomplete/", {**search, "term": "or-1"}).json()
    assert [r["text"] for r in found["results"]] == ["sensor-1"]


def test_the_reach_preview_counts_and_names_what_would_be_refused(client, operator, fleet):
    group, version = fleet
    make_device("gone", group=group, status="decommissioned")
    camera = make_device("cam-1", device_type="camera")
    make_version("1.5.0", security_version=4)
    make_device("ahead", group=group, firmware_version="1.5.0")
    client.force_login(operator)
    answer = client.get(REACH, {"groups": group.pk}).json()
    assert answer == {"message": "4 devices in service."}
    answer = client.get(
        REACH, {"groups": group.pk, "devices": camera.pk, "firmware": version.pk}
    ).json()
    assert answer["message"] == (
        "5 devices in service. 1 device not compatible with sensor 2.0.0 (refused): cam-1. "
        "Running a higher security version (needs a downgrade): ahead."
    )
    assert client.get(REACH).json() == {"message": "Choose devices or groups first."}
    assert client.get(REACH, {"groups": "no-such"}).status_code == 400


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"document": '{"note": "a\\u0000b"}'}, "document"),
        ({"document": '{"size": 1e30}'}, "document"),
        ({"abort_all": "10", "abort_all_executed": str(10**30)}, "abort_all_executed"),
        (
            {"run": "template", "template": "say", "document_parameters": "text=a\x00b"},
            "document_parameters",
        ),
    ],
)
def test_what_the_database_could_not_keep_is_refused_as_the_api_refuses_it(
    client, operator, fleet, fields, field
):
    group, _ = fleet
    JobTemplate.objects.create(template_id="say", document={"say": "${parameters.text}"})
    client.force_login(operator)
    refused = errors(client.post(ADD, form(groups=[group.pk], **fields)))
    assert list(refused) == [field], refused
    assert nothing_created()
