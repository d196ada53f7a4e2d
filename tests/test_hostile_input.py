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


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize(
    "body",
    [
        '{"device_id": "nul-1", "device_type": "sensor", "metadata": {"site": "a\\u0000b"}}',
        '{"device_id": "nul-1", "device_type": "sensor", "metadata": {"a\\u0000": 1}}',
        '{"device_id": "nul-1", "device_type": "sensor", "location": {"lat": 1e20}}',
        '{"device_id": "nul-1", "device_type": "sensor", "metadata": {"n": -1.79e308}}',
        '{"device_id": "nul-1", "device_type": "sensor", "metadata": {"n": 123456789012345678901}}',
        '{"device_id": "nul-1", "device_type": "sensor", "metadata": ' + deep(10_000) + "}",
    ],
)
def test_json_the_portal_could_not_store_or_send_back_is_a_400(admin_api, body):
    response = admin_api.post("/api/v1/devices/", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    assert not Device.objects.exists()


def test_a_group_filter_with_a_nul_is_a_400(operator_api):
    body = '{"name": "g", "filters": {"field": "device_type", "op": "eq", "value": "a\\u0000"}}'

    response = operator_api.post("/api/v1/groups/", body, content_type="application/json")

    assert response.status_code == 400
    assert not DeviceGroup.objects.exists()


@pytest.mark.parametrize(
    "url", ["/api/v1/devices/a%00b/", "/api/v1/devices/?device_type=%00", "/admin/?q=%00"]
)
def test_a_nul_in_the_url_is_a_400(admin_api, url):
    response = admin_api.get(url)

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_every_body_has_one_limit_answered_with_json(admin_api, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    big_csv = "device_id,device_type\n" + "".join(f"d-{n},sensor\n" for n in range(200))

    for content_type, body in [
        ("text/csv", big_csv),
        ("application/json", '{"csv": "' + big_csv.replace("\n", "\\n") + '"}'),
    ]:
        response = admin_api.post("/api/v1/bulk-provisioning/", body, content_type=content_type)
        assert response.status_code == 413
        assert "1,000 bytes" in response.json()["detail"]


def test_a_bulk_csv_with_a_nul_is_a_400_naming_its_line(admin_api):
    body = "device_id,device_type\nok-1,sensor\nbad\x00-2,sensor\n"

    response = admin_api.post("/api/v1/bulk-provisioning/", body, content_type="text/csv")

    assert response.status_code == 400
    assert "Line 3" in str(response.json())


@pytest.mark.parametrize(
    "state",
    [
        '{"reported": {"big": 1e20}}',
        '{"reported": {"n\\u0000": 1}}',
        '{"desired": {"x": "\\u0000"}}',
    ],
)
def test_a_shadow_update_the_portal_could_not_send_back_is_refused_and_the_shadow_still_works(
    state,
):
    from shadows import services
    from tests.conftest import make_device

    make_device("sh-hostile", status="active")
    services.update("sh-hostile", "", b'{"state": {"reported": {"ok": 1}}}', actor="t")

    with pytest.raises(services.ShadowError) as refused:
        services.update("sh-hostile", "", ('{"state": ' + state + "}").encode(), actor="t")

    assert refused.value.code == 400
    assert services.get("sh-hostile", "")["state"]["reported"] == {"ok": 1}


@pytest.mark.parametrize(
    "claims",
    [{"iss": "dev\x00-1"}, {"exp": 10**400}, {"iat": 10**400}],
)
def test_a_device_jwt_with_a_nul_or_an_absurd_time_is_a_401(client, claims):
    import base64
    import json
    import time

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": "dev-1", "iat": now, "exp": now + 60, **claims}
    token = f"{b64({'alg': 'ES256', 'kid': 'a' * 64})}.{b64(payload)}.c2ln"

    response = client.get("/device/v1/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401


@pytest.mark.parametrize(
    "value", ['"a\\u0000"', "1e20", "123456789012345678901234", '{"a": ' * 40 + "1" + "}" * 40]
)
def test_the_config_preview_refuses_what_the_create_refuses(admin_api, value):
    from shadows.models import ConfigValue
    from tests.conftest import make_group

    group = make_group("hostile-site")
    body = '{"group": "' + str(group.pk) + '", "key": "interval", "value": ' + value + "}"

    preview = admin_api.post(
        "/api/v1/config-values/preview/", body, content_type="application/json"
    )
    create = admin_api.post("/api/v1/config-values/", body, content_type="application/json")

    assert (preview.status_code, create.status_code) == (400, 400)
    assert not ConfigValue.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/shadows/configvalue/?group=not-a-uuid",
        "/admin/devices/device/?group__id__exact=not-a-uuid",
        "/admin/shadows/deviceconfiguration/?device=not-a-uuid",
        "/admin/devices/deviceevent/?device=not-a-uuid",
        "/admin/devices/devicecredential/?device=not-a-uuid",
        "/config/drift/?group=not-a-uuid",
        "/admin/devices/device/?group__id__exact=%00",
    ],
)
def test_admin_list_filters_with_bad_values_never_answer_500(fleet_admin, url):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(fleet_admin)

    assert client.get(url).status_code < 500
