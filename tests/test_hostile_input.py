"""Input that a pattern or PostgreSQL would mishandle gets a clear 400 and writes nothing."""

import pytest

from devices.models import Device, DeviceGroup
from devices.validators import validate_device_id

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("device_id", ["dev-1\n", "dev-1\r\n", "\ndev-1"])
def test_a_device_id_with_a_newline_is_refused(admin_api, device_id):
    response = admin_api.post(
        "/api/v1/devices/", {"device_id": device_id, "device_type": "sensor"}, format="json"
    )

    assert response.status_code == 400
    assert "device_id" in response.json()
    assert not Device.objects.exists()


def test_the_validator_refuses_a_trailing_newline():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_device_id("dev-1\n")


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "firmware_version", "op": "gte", "value": "1.2.0\n"},
        {"field": "last_seen", "op": "gte", "value": "-15m\n"},
        {"field": "last_seen", "op": "gte", "value": "2026-01-01T00:00:00+23:30"},
        {"field": "last_seen", "op": "gte", "value": "-999999w"},
        {"field": "metadata.site\n", "op": "eq", "value": "x"},
    ],
)
def test_a_group_filter_postgresql_would_refuse_is_a_400_and_not_saved(operator_api, condition):
    response = operator_api.post(
        "/api/v1/groups/", {"name": "hostile", "filters": condition}, format="json"
    )

    assert response.status_code == 400, response.json()
    assert "filters" in response.json()
    assert not DeviceGroup.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/devices/?last_seen_before=2026-01-01T00:00:00%2B17:52",
        "/api/v1/events/?created_after=0600-09-28T03:53:27.5%2B21:53",
        "/api/v1/devices/?last_seen_after=2026-01-01T00:00:00-16:00",
    ],
)
def test_a_list_filter_with_an_offset_beyond_postgresql_s_range_is_a_400(viewer_api, query):
    response = viewer_api.get(query)

    assert response.status_code == 400
    assert "±15:59" in str(response.json())
