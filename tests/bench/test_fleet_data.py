"""The benches' synthetic fleet is loaded by SQL alone (bench/fleet_data.py): a column the
models add must not break it. It did once — Device.gateway had no database default and every
list-page bench failed on its first INSERT."""

import pytest
from django.test import Client

from bench import fleet_data
from devices.models import Device
from fleetportal import gateways
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_bench_fleet_loads_and_lists_like_any_other():
    fleet_data.load(60, batch=25, progress=lambda _: None)

    assert fleet_data.device_count() == 60
    assert set(Device.objects.values_list("gateway", flat=True)) == {gateways.MOSQUITTO}
    client = Client()
    client.force_login(make_user("bench-reader", is_superuser=True, is_staff=True))
    listed = client.get("/api/v1/devices/", {"device_type": "meter"})
    assert listed.status_code == 200
    assert {d["device_id"] for d in listed.json()["results"]} == set(
        Device.objects.filter(device_type="meter").values_list("device_id", flat=True)
    )
