"""The admin says what is true, the way an operator reads it."""

import re

import pytest
from django.test import Client

from devices.choices import DeviceStatus
from shadows import services as shadows
from shadows.configuration import services as config
from shadows.models import Shadow
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(fleet_admin) -> Client:
    client = Client()
    client.force_login(fleet_admin)
    return client


def test_the_shadow_page_is_titled_by_device_id_and_dates_read_cleanly(admin_client):
    device = make_device("pump-7", status=DeviceStatus.ACTIVE)
    shadows.update(device, "", b'{"state": {"reported": {"on": true}}}', actor="device")
    shadow = Shadow.objects.get(device=device)

    page = admin_client.get(f"/admin/shadows/shadow/{shadow.pk}/change/").content.decode()

    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert title == "Shadow pump-7 / classic"
    assert str(device.pk) not in title
    assert ".." not in page


def test_the_config_shadow_says_configuration_owns_its_desired_state(admin_client):
    site = make_group("site-a")
    device = make_device("pump-8", group=site, status=DeviceStatus.ACTIVE)
    config.set_value("interval", 60, group=site, actor="ada")
    shadow = Shadow.objects.get(device=device, name="config")

    page = admin_client.get(f"/admin/shadows/shadow/{shadow.pk}/change/").content.decode()

    assert 'id="owned-by-configuration"' in page
    assert 'id="desired-form"' not in page


def test_empty_json_fields_and_a_new_config_value_start_empty_not_null(admin_client):
    device = make_device("pump-9")

    device_page = admin_client.get(f"/admin/devices/device/{device.pk}/change/").content.decode()
    new_value = admin_client.get("/admin/shadows/configvalue/add/").content.decode()

    assert not re.search(r"<textarea[^>]*>\s*null\s*</textarea>", device_page)
    assert not re.search(r"<textarea[^>]*>\s*null\s*</textarea>", new_value)


def test_a_group_without_values_does_not_read_as_contradicting_its_members(admin_client):
    site = make_group("site-b")
    page = admin_client.get(f"/admin/devices/devicegroup/{site.pk}/change/").content.decode()

    assert "sets no configuration itself" in page


def test_messages_keep_a_device_ids_case(admin_client):
    device = make_device("pump-10", status=DeviceStatus.ACTIVE)

    response = admin_client.post(
        f"/admin/devices/device/{device.pk}/transition/",
        {"target": "maintenance", "reason": "check", "current": "active"},
        follow=True,
    )

    assert "Device pump-10 is now maintenance." in response.content.decode()
