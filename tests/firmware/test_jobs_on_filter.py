"""A job on the device list's filtered set (`targets: {"filter": "<the list's query string>"}`):
the devices in service the filter matches when the job is created become its targets in one
INSERT … SELECT, a snapshot; beyond settings.BULK_ACTION_MAX_DEVICES it is refused with the cap
stated, counted no further than one past the cap; a bad filter gets the list's own words; the
firmware rules (device type, hardware, downgrade) apply as for devices and groups. The REST API
takes the same filter."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import DeviceStatus
from firmware import engine, jobs
from firmware.models import Job, JobTarget
from monitoring.models import Presence
from tests.conftest import make_device, make_group
from tests.firmware.helpers import make_version

pytestmark = pytest.mark.django_db

# In the list's sidebar order, as the API shows a target filter back.
SENSORS_ON_193 = "online=yes&device_type=sensor&firmware_version=1.9.3"


@pytest.fixture
def fleet():
    """Online sensors on 1.9.3 (two, one in Berlin), an offline one, one on 2.0.0, a camera on
    1.9.3 and a decommissioned sensor on 1.9.3 that is still online."""
    online = [
        make_device("sensor-1", firmware_version="1.9.3", metadata={"site": "berlin"}),
        make_device("sensor-2", firmware_version="1.9.3"),
        make_device("sensor-gone", firmware_version="1.9.3", status=DeviceStatus.DECOMMISSIONED),
        make_device("sensor-new", firmware_version="2.0.0"),
        make_device("camera-1", device_type="camera", firmware_version="1.9.3"),
    ]
    for device in online:
        Presence.objects.create(device=device, online=True)
    make_device("sensor-off", firmware_version="1.9.3")


def create(targets, **fields) -> Job:
    if "firmware" not in fields:
        fields.setdefault("document", {"operation": "reboot"})
    return jobs.create_job({"job_id": "job-1", "targets": targets, **fields}, actor="otto")


def targeted(job: Job) -> set[str]:
    return set(JobTarget.objects.filter(job=job).values_list("device__device_id", flat=True))


def refusal(targets, **fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        create(targets, **fields)
    assert not Job.objects.exists() and not JobTarget.objects.exists()
    return caught.value.message_dict


def test_the_filters_devices_in_service_become_the_targets(fleet):
    job = create({"filter": SENSORS_ON_193})
    assert targeted(job) == {"sensor-1", "sensor-2"}  # not the decommissioned one
    assert job.target_count == 2
    assert job.target_filter == {
        "device_type": "sensor",
        "firmware_version": "1.9.3",
        "online": "yes",
    }
    assert not job.target_devices.exists() and not job.target_groups.exists()


def test_the_targets_are_a_snapshot(fleet):
    job = create({"filter": SENSORS_ON_193})
    late = make_device("sensor-late", firmware_version="1.9.3")
    Presence.objects.create(device=late, online=True)
    engine.tick()
    assert targeted(job) == {"sensor-1", "sensor-2"}
    assert job.executions.count() == 2


def test_a_search_and_a_group_are_filters_too(fleet):
    roof = make_group("roof")
    make_device("sensor-roof", group=roof)
    make_device("camera-roof", device_type="camera", group=roof)
    assert targeted(create({"filter": "q=BERLIN"})) == {"sensor-1"}
    Job.objects.all().delete()
    job = create({"filter": f"group__id__exact={roof.pk}&device_type=sensor"})
    assert targeted(job) == {"sensor-roof"}


def test_beyond_the_cap_it_is_refused_with_the_cap_stated(fleet, settings):
    settings.BULK_ACTION_MAX_DEVICES = 1
    errors = refusal({"filter": SENSORS_ON_193})
    assert errors == {
        "targets": [
            "filter: A job on a filter takes at most 1 devices; this filter matches more. "
            "Narrow the list first, or target a group."
        ]
    }


def test_the_count_stops_one_past_the_cap(fleet, settings):
    settings.BULK_ACTION_MAX_DEVICES = 7
    with CaptureQueriesContext(connection) as queries:
        jobs.filter_targets("device_type=sensor")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 8" in counts[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status__exact=sleeping", "filter: Unknown filter value 'sleeping'."),
        ("device_typ=sensor", "filter: Unknown parameter 'device_typ'; the list knows "),
        ("device_type=sensor&device_type=camera", "filter: 'device_type' is given twice."),
        ("group__id__exact=not-a-group", "filter: No such group."),
        ("", "filter: Choose at least one filter or a search"),
        ("device_type=toaster", "filter: The filter matches no device in service."),
        ("status__exact=decommissioned", "filter: The filter matches no device in service."),
    ],
)
def test_a_bad_filter_gets_the_lists_own_words(fleet, text, message):
    [said] = refusal({"filter": text})["targets"]
    assert said.startswith(message)


def test_a_filter_is_a_snapshot_and_stands_alone(fleet):
    errors = refusal({"filter": SENSORS_ON_193}, target_selection="CONTINUOUS")
    assert errors["target_selection"][0].startswith("A device-list filter is a snapshot")
    errors = refusal({"filter": SENSORS_ON_193, "devices": ["camera-1"]})
    assert errors == {"targets": ["filter: give it alone, without devices or groups."]}
    assert refusal({"filter": ["device_type=sensor"]})["targets"] == [
        "filter: must be the device list's query string, as text."
    ]


def test_a_firmware_job_refuses_incompatible_devices_as_for_groups(fleet):
    version = make_version("2.1.0", security_version=2)
    errors = refusal({"filter": "firmware_version=1.9.3&online=yes"}, firmware=version.pk)
    assert errors == {"targets": ["Not sensor: camera-1."]}
    job = create({"filter": SENSORS_ON_193}, firmware=version.pk)
    assert targeted(job) == {"sensor-1", "sensor-2"}


def test_a_firmware_job_refuses_a_downgrade_unless_allowed(fleet):
    make_version("1.9.3", security_version=3)
    older = make_version("1.8.0", security_version=1)
    errors = refusal({"filter": SENSORS_ON_193}, firmware=older.pk)
    assert errors["firmware"][0].startswith("Security version 1 is lower than what these")
    job = create(
        {"filter": SENSORS_ON_193},
        firmware=older.pk,
        allow_downgrade=True,
        downgrade_reason="1.9.3 drains batteries",
    )
    assert targeted(job) == {"sensor-1", "sensor-2"}


def test_the_api_creates_a_job_on_a_filter(fleet, operator_api):
    body = {"job_id": "reboot-193", "document": {"operation": "reboot"}}
    answer = operator_api.post(
        "/api/v1/jobs/", {**body, "targets": {"filter": SENSORS_ON_193}}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["targets"] == {"devices": [], "groups": [], "filter": SENSORS_ON_193}
    assert targeted(Job.objects.get()) == {"sensor-1", "sensor-2"}
    shown = operator_api.get("/api/v1/jobs/reboot-193/").json()
    assert shown["targets"]["filter"] == SENSORS_ON_193


def test_the_api_refuses_a_bad_filter_on_its_field(fleet, operator_api):
    body = {"job_id": "reboot-193", "document": {"operation": "reboot"}}
    answer = operator_api.post(
        "/api/v1/jobs/", {**body, "targets": {"filter": "colour=red"}}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json()["targets"][0].startswith("filter: Unknown parameter 'colour'")
    answer = operator_api.post(
        "/api/v1/jobs/", {**body, "targets": {"filter": "q=" + "x" * 2000}}, format="json"
    )
    assert answer.status_code == 400 and "filter" in answer.json()["targets"]
    assert not Job.objects.exists()
