"""A configuration key's state (not pushed yet, pending, applied, drift) is the same on the
device page, in the API and on the drift page (shadows.configuration.states)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from shadows import services as shadows
from shadows.choices import ConfigState
from shadows.configuration import services as config
from shadows.models import DeviceConfiguration
from tests.conftest import make_device, make_group, make_user, token_client

pytestmark = pytest.mark.django_db


def one_key_in_each_state() -> Device:
    site = make_group("site-a")
    device = make_device("d-states", group=site)
    for key in ("applied_key", "pending_key", "drift_key", "unpushed_key"):
        config.set_value(key, 1, group=site, actor="ada")
    shadows.update(device, "config", {"state": {"reported": {"applied_key": 1}}}, actor="device")
    DeviceConfiguration.objects.filter(config_key="drift_key").update(
        pushed_at=timezone.now() - timedelta(hours=2)
    )
    # As when a big group's render waits for its Celery task: the value is not pushed yet.
    DeviceConfiguration.objects.filter(config_key="unpushed_key").delete()
    Device.objects.filter(pk=device.pk).update(last_seen=timezone.now())
    return device


EXPECTED = {
    "applied_key": ConfigState.APPLIED,
    "pending_key": ConfigState.PENDING,
    "drift_key": ConfigState.DRIFT,
    "unpushed_key": ConfigState.NOT_PUSHED,
}


def test_admin_api_and_drift_page_agree_on_each_keys_state(client):
    device = one_key_in_each_state()
    admin_user = make_user("ada", "Fleet admin", is_staff=True)
    client.force_login(admin_user)
    api = token_client(admin_user)

    page = client.get(reverse("admin:devices_device_change", args=[device.pk]))
    on_page = {row["key"]: row["state"] for row in page.context["configuration"]}
    over_api = api.get(f"/api/v1/devices/{device.device_id}/config/").json()["configuration"]
    drift_page = client.get(reverse("shadows:config-drift"))
    drift_api = api.get("/api/v1/config/drift/").json()["results"]

    assert on_page == EXPECTED
    assert {key: entry["state"] for key, entry in over_api.items()} == EXPECTED
    # Each state as a badge (colour and words) on the device page.
    assert ">not pushed yet</span>" in page.text and 'data-status="drift">drift<' in page.text
    drifted = {d.device_id: [k["key"] for k in keys] for d, keys in drift_page.context["devices"]}
    assert drifted == {"d-states": ["drift_key"]}
    assert {d["device_id"]: [k["key"] for k in d["keys"]] for d in drift_api} == drifted
    assert drift_page.context["summary"][0][1] == {"applied": 0, "pending": 0, "drift": 1}
    pushed = client.get(reverse("admin:shadows_deviceconfiguration_changelist"))
    listed = {row.config_key: row.state for row in pushed.context["cl"].result_list}
    assert listed == {k: v for k, v in EXPECTED.items() if v != ConfigState.NOT_PUSHED}


def test_a_device_that_never_connected_is_pending_everywhere_not_drifting(client):
    device = one_key_in_each_state()
    Device.objects.filter(pk=device.pk).update(last_seen=None)
    admin_user = make_user("ada", "Fleet admin", is_staff=True)
    client.force_login(admin_user)

    page = client.get(reverse("admin:devices_device_change", args=[device.pk]))
    over_api = token_client(admin_user).get("/api/v1/devices/d-states/config/").json()

    assert {row["key"]: row["state"] for row in page.context["configuration"]}["drift_key"] == (
        ConfigState.PENDING
    )
    assert over_api["configuration"]["drift_key"]["state"] == "pending"
    assert client.get(reverse("shadows:config-drift")).context["devices"] == []
