"""The jobs admin: counts and executions shown, cancel and force-cancel for operators only,
templates checked like the API."""

import pytest

from firmware import engine
from firmware.models import Job, JobExecution, JobTemplate
from tests.conftest import make_device
from tests.firmware.helpers import executions_of, make_job, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    job = make_job(devices=[make_device("a"), make_device("b")])
    engine.tick(job.created_at)
    start(executions_of(job)[0], job.created_at, status_details={"step": "download"})
    return job


def test_a_job_page_shows_counts_and_links_its_executions(client, viewer, job):
    client.force_login(viewer)
    page = client.get(f"/admin/firmware/job/{job.pk}/change/").content.decode()
    assert "in_progress: 1" in page and "queued: 1" in page
    executions = client.get("/admin/firmware/jobexecution/?job__job_id=job-1").content.decode()
    assert "download" in executions


def test_an_operator_cancels_and_force_cancels(client, operator, job):
    client.force_login(operator)
    url = "/admin/firmware/job/"
    client.post(url, {"action": "cancel", "_selected_action": [job.pk]})
    assert sorted(e.status for e in executions_of(job)) == ["CANCELED", "IN_PROGRESS"]
    client.post(url, {"action": "force_cancel", "_selected_action": [job.pk]})
    assert {e.status for e in executions_of(job)} == {"CANCELED"}
    assert Job.objects.get().canceled_by == "otto"


def test_a_viewer_cannot_cancel(client, viewer, job):
    client.force_login(viewer)
    client.post("/admin/firmware/job/", {"action": "cancel", "_selected_action": [job.pk]})
    assert Job.objects.get().status == "IN_PROGRESS"


def test_an_execution_is_cancelled_from_its_list(client, operator, job):
    client.force_login(operator)
    queued = JobExecution.objects.get(status="QUEUED")
    client.post(
        "/admin/firmware/jobexecution/", {"action": "cancel", "_selected_action": [queued.pk]}
    )
    queued.refresh_from_db()
    assert queued.status == "CANCELED"


def template_form(**configs: str) -> dict[str, str]:
    """The admin's add form for a template, each config box empty unless given."""
    boxes = ("rollout_config", "abort_config", "timeout_config", "retry_config")
    boxes += ("scheduling_config",)
    form = {"template_id": "reboot", "description": "", "document": '{"op": "reboot"}'}
    return {**form, **dict.fromkeys(boxes, ""), **configs}


def test_a_template_with_a_config_out_of_range_is_refused(client, fleet_admin):
    client.force_login(fleet_admin)
    form = template_form(rollout_config='{"maximum_per_minute": 5000}')
    page = client.post("/admin/firmware/jobtemplate/add/", form)
    assert "from 1 to 1000" in page.content.decode()
    form["rollout_config"] = '{"maximum_per_minute": 50}'
    client.post("/admin/firmware/jobtemplate/add/", form)
    assert JobTemplate.objects.get().created_by == "ada"


def test_a_template_takes_maintenance_windows_in_the_admin(client, fleet_admin):
    client.force_login(fleet_admin)
    form = template_form(
        scheduling_config='{"maintenance_windows": [{"start_time": "0 2 * * *", '
        '"duration_in_minutes": 60}]}'
    )
    page = client.post("/admin/firmware/jobtemplate/add/", form)
    assert "Must be an AWS cron expression" in page.content.decode()
    assert not JobTemplate.objects.exists()
    form["scheduling_config"] = form["scheduling_config"].replace(
        '"0 2 * * *"', '"cron(0 2 * * ? *)"'
    )
    client.post("/admin/firmware/jobtemplate/add/", form)
    window = JobTemplate.objects.get().scheduling_config["maintenance_windows"][0]
    assert window["start_time"] == "cron(0 2 * * ? *)"


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ('{"op": "re\\u0000boot"}', "NUL character"),
        ('{"size": 1e300}', "outside the 64-bit range"),
        ("[" * 100 + "]" * 100, "nested deeper than 32"),
        ("[" * 100_000 + "]" * 100_000, "Nested too deeply"),
    ],
)
def test_a_template_document_the_portal_could_not_store_is_refused_on_its_field(
    client, fleet_admin, document, said
):
    client.force_login(fleet_admin)
    page = client.post("/admin/firmware/jobtemplate/add/", template_form(document=document))
    assert page.status_code == 200 and said in page.content.decode()
    assert not JobTemplate.objects.exists()
