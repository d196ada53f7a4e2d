"""Dynamic groups through the REST API and the admin: validation, preview, groups as filters."""

import pytest
from django.urls import reverse

from devices.models import DeviceGroup
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/groups/"
PREVIEW = "/api/v1/groups/preview/"
DEVICES = "/api/v1/devices/"
CAMERAS = {"field": "device_type", "op": "eq", "value": "camera"}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return sorted(d["device_id"] for d in response.json()["results"])


def test_api_creates_a_dynamic_group(operator_api):
    response = operator_api.post(GROUPS, {"name": "cams", "filters": CAMERAS}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["is_dynamic"] is True
    assert DeviceGroup.objects.get(name="cams").filters == CAMERAS


def test_api_refuses_a_bad_filter_naming_the_problem(operator_api):
    bad = {"all": [CAMERAS, {"field": "model", "op": "like", "value": "x"}]}
    response = operator_api.post(GROUPS, {"name": "cams", "filters": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["filters"] == [
        "filters.all[1].op: unknown operator 'like'; one of eq, ne, in, lt, lte, gt, gte, "
        "exists, prefix"
    ]
    assert not DeviceGroup.objects.exists()


def test_api_refuses_a_filter_on_a_group_with_assigned_members(operator_api):
    group = make_group("north")
    make_device(group=group)
    response = operator_api.patch(f"{GROUPS}{group.pk}/", {"filters": CAMERAS}, format="json")
    assert response.status_code == 400
    assert "assigned members" in response.json()["filters"][0]


def test_member_counts_dynamic_on_the_group_only(viewer_api):
    group = make_group("cams", filters=CAMERAS)
    make_device("c-1", device_type="camera")
    make_device("c-2", device_type="camera")
    make_device("s-1")
    listed = {g["name"]: g for g in viewer_api.get(GROUPS).json()["results"]}
    assert listed["cams"]["member_count"] is None
    one = viewer_api.get(f"{GROUPS}{group.pk}/").json()
    assert (one["member_count"], one["member_count_is_approximate"]) == (2, False)


def test_preview_counts_and_samples(viewer_api):
    make_device("c-1", device_type="camera", firmware_version="1.10.0", status="active")
    make_device("c-2", device_type="camera", firmware_version="1.9.3")
    make_device("s-1")
    document = {"all": [CAMERAS, {"field": "firmware_version", "op": "gt", "value": "1.9.3"}]}
    response = viewer_api.post(PREVIEW, {"filters": document}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "count_is_approximate": False,
        "sample": [
            {
                "device_id": "c-1",
                "device_type": "camera",
                "status": "active",
                "firmware_version": "1.10.0",
            }
        ],
    }
    assert not DeviceGroup.objects.exists()


def test_preview_past_the_exact_limit_is_approximate(viewer_api, settings):
    settings.LIST_EXACT_COUNT_LIMIT = 2
    for _ in range(4):
        make_device(device_type="camera")
    body = viewer_api.post(PREVIEW, {"filters": CAMERAS}, format="json").json()
    assert body["count_is_approximate"] is True
    assert body["count"] >= 3
    assert len(body["sample"]) == 4


def test_preview_sample_is_at_most_20(viewer_api):
    for _ in range(25):
        make_device(device_type="camera")
    body = viewer_api.post(PREVIEW, {"filters": CAMERAS}, format="json").json()
    assert (body["count"], len(body["sample"])) == (25, 20)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"field": "colour", "op": "eq", "value": "red"}, "filters.field: unknown field 'colour'"),
        ({"field": "firmware_version", "op": "gt", "value": "1.x"}, "'1.x' is not a version"),
        ({"field": "status", "op": "gt", "value": "active"}, "'gt' does not apply to field"),
        ({"field": "online", "op": "eq", "value": "yes"}, "'online' takes true or false"),
        ({}, "A preview needs a filter document."),
    ],
)
def test_preview_refuses_bad_filters(viewer_api, filters, message):
    response = viewer_api.post(PREVIEW, {"filters": filters}, format="json")
    assert response.status_code == 400
    assert any(message in m for m in response.json()["filters"]), response.json()


def test_preview_needs_view_permission(client, django_user_model):
    from tests.conftest import token_client

    nobody = django_user_model.objects.create_user("nobody", password="x")
    response = token_client(nobody).post(PREVIEW, {"filters": CAMERAS}, format="json")
    assert response.status_code == 403
    client.logout()
    assert client.post(
        PREVIEW, {"filters": CAMERAS}, content_type="application/json"
    ).status_code in (
        401,
        403,
    )


def test_device_list_filters_by_a_dynamic_group(viewer_api):
    make_group("cams", filters=CAMERAS)
    make_device("c-1", device_type="camera")
    make_device("s-1")
    assert ids(viewer_api.get(DEVICES, {"group": "cams"})) == ["c-1"]


# -- admin -------------------------------------------------------------------------------------


def test_admin_refuses_a_bad_filter(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("admin:devices_devicegroup_add"),
        {
            "name": "lab",
            "description": "",
            "filters": '{"field": "firmware_version", "op": "lt", "value": "1.2.x"}',
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["filters"]
    assert errors == [
        "filters.value: '1.2.x' is not a version; compare with dotted numbers such as '1.10.0'"
    ]
    assert not DeviceGroup.objects.exists()


def test_admin_group_page_shows_count_and_sample(client, viewer):
    group = make_group("cams", filters=CAMERAS)
    make_device("c-1", device_type="camera")
    make_device("s-1")
    client.force_login(viewer)
    page = client.get(reverse("admin:devices_devicegroup_change", args=[group.pk])).text
    assert "1 device(s)" in page
    assert "c-1" in page
    assert "s-1" not in page


def test_admin_device_list_filters_by_a_dynamic_group(client, viewer):
    group = make_group("cams", filters=CAMERAS)
    make_device("c-1", device_type="camera")
    make_device("s-1")
    client.force_login(viewer)
    response = client.get(
        reverse("admin:devices_device_changelist"), {"group__id__exact": group.pk}
    )
    assert [d.device_id for d in response.context["cl"].result_list] == ["c-1"]
    assert "cams" in response.text
