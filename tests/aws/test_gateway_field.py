"""A device's gateway through the API and the console: set on registration, refused when it names
no gateway, moved with the device's other fields; the AWS pages of the console."""

import pytest

from aws_gateway.choices import SyncState
from aws_gateway.models import ThingSync
from devices.models import Device, DeviceTypeGateway
from tests.aws.helpers import aws_device
from tests.conftest import make_device

pytestmark = pytest.mark.django_db
DEVICES = "/api/v1/devices/"


def test_a_device_registered_on_aws_through_the_api_waits_for_its_sync(admin_api):
    response = admin_api.post(
        DEVICES, {"device_id": "pump-1", "device_type": "pump", "gateway": "aws"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["gateway"] == "aws"
    assert ThingSync.objects.get(device__device_id="pump-1").state == SyncState.PENDING


def test_a_gateway_nobody_registered_is_refused_and_nothing_is_written(admin_api):
    response = admin_api.post(
        DEVICES, {"device_id": "pump-2", "device_type": "pump", "gateway": "azure"}, format="json"
    )

    assert response.status_code == 400
    assert (
        "gateway" in response.json()["errors"] if "errors" in response.json() else response.json()
    )
    assert not Device.objects.filter(device_id="pump-2").exists()


def test_the_type_default_applies_when_the_api_names_no_gateway(admin_api):
    DeviceTypeGateway.objects.create(device_type="camera", gateway="aws")

    response = admin_api.post(
        DEVICES, {"device_id": "cam-9", "device_type": "camera"}, format="json"
    )

    assert response.json()["gateway"] == "aws"


def test_moving_a_device_off_aws_leaves_its_thing_to_retire(admin_api):
    aws_device("pump-3")
    ThingSync.objects.update(state=SyncState.SYNCED, synced_generation=1)

    response = admin_api.patch(f"{DEVICES}pump-3/", {"gateway": "mosquitto"}, format="json")

    assert response.status_code == 200
    assert ThingSync.objects.get(device__device_id="pump-3").state == SyncState.PENDING


def test_the_device_page_shows_the_aws_section_only_for_aws_devices(admin_client):
    on_aws, local = aws_device("pump-4"), make_device("local-4")

    page = admin_client.get(f"/admin/devices/device/{on_aws.pk}/change/").content.decode()
    assert 'id="device-aws"' in page and "Waiting to sync" in page
    page = admin_client.get(f"/admin/devices/device/{local.pk}/change/").content.decode()
    assert 'id="device-aws"' not in page


def test_the_console_lists_sync_states_and_imports(admin_client):
    aws_device("pump-5")

    listing = admin_client.get("/admin/aws_gateway/thingsync/?state__exact=pending")
    assert listing.status_code == 200 and "pump-5" in listing.content.decode()
    assert admin_client.get("/admin/aws_gateway/fleetimport/add/").status_code == 200
    assert admin_client.get("/admin/devices/devicetypegateway/").status_code == 200


def test_an_operator_moves_a_device_to_aws_from_its_page(admin_client):
    device = make_device("valve-9", device_type="valve")
    form = {
        "device_id": "valve-9",
        "device_type": "valve",
        "device_name": "",
        "gateway": "aws",
        "metadata": "{}",
        "location": "",
        "credentials-TOTAL_FORMS": "0",
        "credentials-INITIAL_FORMS": "0",
    }

    response = admin_client.post(f"/admin/devices/device/{device.pk}/change/", form)

    assert response.status_code == 302
    device.refresh_from_db()
    assert device.gateway == "aws"
    assert ThingSync.objects.get(device=device).state == SyncState.PENDING
    assert device.events.filter(event_data__changes__gateway=["mosquitto", "aws"]).exists()
