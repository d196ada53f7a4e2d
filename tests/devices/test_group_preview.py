"""The dynamic group form's preview: what a typed filter matches now (count and newest devices),
or the filter language's messages, before anything is saved; hostile text is a 400, never a 500."""

import json

import pytest
from django.urls import reverse

from devices.choices import DeviceStatus
from devices.models import DeviceGroup
from tests.conftest import make_device, make_group, make_user

PREVIEW = reverse("admin:devices_devicegroup_preview")

pytestmark = pytest.mark.django_db


def preview(client, text: str):
    return client.post(PREVIEW, {"filters": text})


def test_the_preview_counts_and_samples_the_matches(client, viewer):
    for n in range(3):
        make_device(f"s-{n}", device_type="sensor", status=DeviceStatus.ACTIVE)
    make_device("c-1", device_type="camera")
    client.force_login(viewer)
    answer = preview(client, '{"field": "device_type", "op": "eq", "value": "sensor"}')
    assert answer.status_code == 200
    body = answer.json()
    assert (body["count"], body["approximate"]) == (3, False)
    assert [d["device_id"] for d in body["sample"]] == ["s-2", "s-1", "s-0"]
    assert body["sample"][0]["url"].startswith("/admin/devices/device/")
    assert not DeviceGroup.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"field": "device_type", "op": "like", "value": "x"}', "unknown operator 'like'"),
        ('{"field": "group", "op": "eq", "value": "nowhere"}', "no group is named 'nowhere'"),
        ('{"field": "device_type", "op": "eq"', "filters: Enter a valid JSON"),
        ("", "No filter: the group is static"),
        ("{}", "No filter: the group is static"),
        ('{"field": "metadata.a", "op": "eq", "value": "\\u0000"}', "NUL"),
        ('{"field": "metadata.a", "op": "gt", "value": 1e400}', "filters:"),
        ("[" * 5000 + "]" * 5000, "filters:"),
        ('{"field": "' + "x" * 70_000 + '"}', "longer than"),
    ],
)
def test_a_bad_filter_gets_the_languages_message(client, viewer, text, message):
    client.force_login(viewer)
    answer = preview(client, text)
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert any(message in e for e in errors), errors


def test_the_preview_needs_the_right_to_see_groups_and_devices(client):
    client.force_login(make_user("nobody", is_staff=True))
    assert preview(client, '{"field": "status", "op": "eq", "value": "active"}').status_code == 403


def test_the_group_page_has_the_preview_and_the_languages_help(client, operator):
    group = make_group("sensors", filters={"field": "device_type", "op": "eq", "value": "s"})
    client.force_login(operator)
    page = client.get(reverse("admin:devices_devicegroup_change", args=[group.pk])).text
    assert 'id="group-filter-preview"' in page and "group_preview.js" in page
    assert "Sensors in Berlin on firmware older than 1.10" in page
    assert json.dumps(PREVIEW)[1:-1] in page
