"""A request that fails with a 500 has written nothing: each request is one transaction."""

import pytest
from rest_framework.test import APIClient

from devices.api import serializers
from devices.models import Device, DeviceEvent, DeviceGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_after_save(monkeypatch):
    """The response cannot be built: everything the request saved before that must go."""

    def fail(self, instance):
        raise RuntimeError("a bug after the save")

    monkeypatch.setattr(serializers.DeviceGroupSerializer, "to_representation", fail)
    monkeypatch.setattr(serializers.DeviceSerializer, "to_representation", fail)


def unraised(client: APIClient) -> APIClient:
    client.raise_request_exception = False
    return client


@pytest.mark.usefixtures("failing_after_save")
def test_a_group_whose_request_answers_500_is_not_saved(operator_api):
    response = unraised(operator_api).post(
        "/api/v1/groups/", {"name": "half-written"}, format="json"
    )

    assert response.status_code == 500
    assert not DeviceGroup.objects.filter(name="half-written").exists()


@pytest.mark.usefixtures("failing_after_save")
def test_a_device_whose_request_answers_500_is_not_registered_nor_its_event(admin_api):
    response = unraised(admin_api).post(
        "/api/v1/devices/", {"device_id": "ghost-1", "device_type": "sensor"}, format="json"
    )

    assert response.status_code == 500
    assert not Device.objects.filter(device_id="ghost-1").exists()
    assert DeviceEvent.objects.count() == 0
