"""The device list's "Run a job on these devices": the entry is there for those who may create
jobs (firmware's DEVICE_LIST action; the list's queries stay constant with it), it opens the job
form on the list's filter, which shows what the targets are in place of the pickers, refuses a
filter beyond the cap or one it does not know while keeping what the operator typed, and lands
on the new job's page."""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.http import urlencode

from firmware.models import Job, JobTarget
from monitoring.models import Presence
from tests.conftest import make_device, make_group
from tests.firmware.helpers import job_form, make_version

pytestmark = pytest.mark.django_db
DEVICES = reverse("admin:devices_device_changelist")
ADD = reverse("admin:firmware_job_add")
FILTER = "device_type=sensor&firmware_version=1.9.3&online=yes"
RUN_JOB = "Run a job on these devices"


@pytest.fixture
def fleet():
    """Three online sensors on 1.9.3, an offline one, an online camera on 1.9.3."""
    for n in range(3):
        Presence.objects.create(
            device=make_device(f"sensor-{n}", firmware_version="1.9.3"), online=True
        )
    make_device("sensor-off", firmware_version="1.9.3")
    camera = make_device("camera-1", device_type="camera", firmware_version="1.9.3")
    Presence.objects.create(device=camera, online=True)


def on_filter(text: str = FILTER) -> str:
    return ADD + "?" + urlencode({"device_filter": text})


def form(text: str = FILTER, **fields) -> dict:
    """The add form on a filter as the browser posts it: the filter in its hidden input (the
    pickers and target selection are not on the page; posted anyway, they are ignored)."""
    return job_form(job_id="reboot-193", device_filter=text, **fields)


def entry_href(page: str) -> str | None:
    found = re.search(r'<a class="button" href="([^"]+)">' + RUN_JOB + "</a>", page)
    return html.unescape(found.group(1)) if found else None


def filter_text(answer) -> str:
    shown = re.search(r'id="filter-targets"[^>]*>(.*?)</p>', answer.text)[1]
    return html.unescape(re.sub(r"\s+", " ", shown))


def test_the_list_offers_the_filtered_set_to_those_who_may_run_jobs(client, operator, fleet):
    client.force_login(operator)
    href = entry_href(client.get(DEVICES + "?" + FILTER).text)
    assert href == on_filter(FILTER)
    assert entry_href(client.get(DEVICES).text) is None  # not on the whole fleet


def test_a_viewer_sees_no_entry_and_gets_403_on_its_page(client, viewer, fleet):
    client.force_login(viewer)
    assert RUN_JOB not in client.get(DEVICES + "?" + FILTER).text
    assert client.get(on_filter()).status_code == 403
    assert client.post(on_filter(), form()).status_code == 403
    assert not Job.objects.exists()


def count_queries(client, url: str) -> int:
    client.get(url)  # the first request of a session may load caches once
    with CaptureQueriesContext(connection) as ctx:
        answer = client.get(url)
    assert answer.status_code == 200 and RUN_JOB in answer.text
    return len(ctx.captured_queries)


def test_the_lists_queries_stay_constant_with_the_entry(client, operator):
    client.force_login(operator)
    make_device("a-0")
    few = count_queries(client, DEVICES + "?device_type=sensor")
    for n in range(1, 30):
        make_device(f"a-{n}", group=make_group(f"g-{n}"))
    assert count_queries(client, DEVICES + "?device_type=sensor") == few


def test_the_form_shows_the_targets_instead_of_the_pickers(client, operator, fleet):
    client.force_login(operator)
    answer = client.get(on_filter())
    assert answer.status_code == 200
    assert filter_text(answer) == (
        "The 3 devices matching connectivity: Online, device type: sensor, firmware version: 1.9.3."
    )
    assert "A snapshot: the devices in service that match" in answer.text
    fields = answer.context["adminform"].form.fields
    assert "devices" not in fields and "groups" not in fields
    assert "target_selection" not in fields
    back = html.unescape(re.search(r'href="([^"]+)" id="filter-targets-list"', answer.text)[1])
    assert back == DEVICES + "?" + FILTER


def test_creating_lands_on_the_jobs_page_with_its_targets(client, operator, fleet):
    client.force_login(operator)
    answer = client.post(on_filter(), form())
    job = Job.objects.get()
    assert answer.status_code == 302
    assert answer.url == reverse("admin:firmware_job_change", args=[job.pk])
    assert set(JobTarget.objects.filter(job=job).values_list("device__device_id", flat=True)) == {
        "sensor-0",
        "sensor-1",
        "sensor-2",
    }
    page = client.get(answer.url).text
    assert "was added successfully" in page
    assert (
        "The 3 devices in service matching connectivity: Online, device type: sensor, "
        "firmware version: 1.9.3 when the job was created"
    ) in page


def test_beyond_the_cap_the_form_says_so_and_keeps_what_was_typed(
    client, operator, fleet, settings
):
    settings.BULK_ACTION_MAX_DEVICES = 2
    client.force_login(operator)
    shown = filter_text(client.get(on_filter()))
    assert shown.startswith("A job on a filter takes at most 2 devices; this filter matches more.")
    answer = client.post(on_filter(), form(description="nightly reboot", maximum_per_minute="5"))
    assert answer.status_code == 200 and not Job.objects.exists()
    bound = answer.context["adminform"].form
    assert bound.errors["device_filter"][0].startswith("A job on a filter takes at most 2 devices")
    assert f'name="device_filter" value="{html.escape(FILTER)}"' in answer.text
    assert bound["description"].value() == "nightly reboot"
    assert bound["maximum_per_minute"].value() == "5"
    assert filter_text(answer) == ""  # said once, on the field


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status__exact=sleeping", "Unknown filter value 'sleeping'."),
        ("", "Choose at least one filter or a search"),
    ],
)
def test_a_bad_filter_gets_the_lists_own_words(client, operator, fleet, text, message):
    client.force_login(operator)
    assert filter_text(client.get(on_filter(text))).startswith(message)
    answer = client.post(on_filter(text), form(text))
    assert answer.context["adminform"].form.errors["device_filter"][0].startswith(message)
    assert not Job.objects.exists()


def test_a_firmware_job_names_the_incompatible_devices_on_the_targets(client, operator, fleet):
    version = make_version("2.0.0", security_version=1)
    client.force_login(operator)
    text = "firmware_version=1.9.3&online=yes"
    answer = client.post(on_filter(text), form(text, run="firmware", firmware=version.pk))
    errors = answer.context["adminform"].form.errors
    assert errors == {"device_filter": ["Not sensor: camera-1."]}
    assert not Job.objects.exists()
    answer = client.post(on_filter(), form(run="firmware", firmware=version.pk))
    assert answer.status_code == 302
    assert Job.objects.get().firmware == version
