"""The configuration REST API: values (CRUD), preview, a device's effective configuration,
drift, a group's summary and the change log, with the roles' rights."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal.models import OutboxMessage
from shadows import services as shadows
from shadows.configuration import services as config
from shadows.models import ConfigChange, ConfigValue, DeviceConfiguration, Shadow
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db

VALUES = "/api/v1/config-values/"
PREVIEW = VALUES + "preview/"
CHANGES = "/api/v1/config-changes/"
DRIFT = "/api/v1/config/drift/"


def value_url(value: ConfigValue) -> str:
    return f"{VALUES}{value.pk}/"


def device_config_url(device_id: str) -> str:
    return f"/api/v1/devices/{device_id}/config/"


def summary_url(group) -> str:
    return f"/api/v1/groups/{group.pk}/config-summary/"


def written() -> tuple[int, int, int, int]:
    """What a refused request must leave untouched."""
    return (
        ConfigValue.objects.count(),
        ConfigChange.objects.count(),
        Shadow.objects.count(),
        OutboxMessage.objects.count(),
    )


def assert_refused(response, field: str, status: int = 400) -> None:
    assert response.status_code == status, response.content
    assert field in response.json(), response.json()


def report(device, state: dict) -> None:
    shadows.update(device, "config", {"state": {"reported": state}}, actor="device")


@pytest.fixture
def site():
    return make_group("site-a")


@pytest.fixture
def pump(site):
    return make_device("pump-7", group=site)


# --- create, read, change, remove -------------------------------------------------------------


def test_operator_sets_a_group_value_and_the_members_get_it(site, pump, operator_api):
    response = operator_api.post(VALUES, {"group": str(site.pk), "key": "interval", "value": 60})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["scope"] == "group"
    assert body["group"] == {"id": str(site.pk), "name": "site-a"}
    assert body["device"] is None
    assert (body["key"], body["value"], body["version"]) == ("interval", 60, 1)
    assert body["updated_by"] == "token:otto" and body["updated_at"]
    assert Shadow.objects.get(device=pump, name="config").desired_state == {"interval": 60}


def test_admin_sets_a_device_value(pump, admin_api):
    response = admin_api.post(VALUES, {"device": "pump-7", "key": "mode", "value": {"a": [1]}})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["scope"], body["group"], body["device"]) == ("device", None, "pump-7")
    assert ConfigChange.objects.get().actor == "token:ada"


def test_viewer_reads_a_value(site, pump, viewer_api):
    value = config.set_value("interval", 60, group=site, actor="otto")

    response = viewer_api.get(value_url(value))

    assert response.status_code == 200
    assert response.json()["id"] == value.pk and response.json()["updated_by"] == "otto"


def test_patch_changes_the_value_and_bumps_the_version(site, pump, operator_api):
    value = config.set_value("interval", 60, group=site, actor="ada")

    response = operator_api.patch(value_url(value), {"value": 30})

    assert response.status_code == 200, response.content
    assert (response.json()["value"], response.json()["version"]) == (30, 2)
    assert response.json()["updated_by"] == "token:otto"
    assert Shadow.objects.get(device=pump, name="config").desired_state == {"interval": 30}


def test_patch_accepts_key_and_scope_sent_back_unchanged(site, operator_api):
    value = config.set_value("interval", 60, group=site, actor="ada")
    body = {"value": 5, "key": "interval", "group": str(site.pk), "device": None}

    response = operator_api.patch(value_url(value), body)

    assert response.status_code == 200, response.content
    assert response.json()["value"] == 5


def test_patch_takes_back_what_was_read_with_a_new_value(site, operator_api):
    value = config.set_value("interval", 60, group=site, actor="ada")
    body = {**operator_api.get(value_url(value)).json(), "value": 7}

    response = operator_api.patch(value_url(value), body)

    assert response.status_code == 200, response.content
    assert (response.json()["value"], response.json()["version"]) == (7, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 5, "key": "other"}, "key"),
        ({"value": 5, "device": "pump-7"}, "device"),
        ({"value": 5, "group": "00000000-0000-0000-0000-000000000000"}, "group"),
        ({"value": 5, "group": {"id": "00000000-0000-0000-0000-000000000000"}}, "group"),
        ({"value": 5, "colour": "red"}, "colour"),
        ({"key": "interval"}, "value"),
        ({"value": None}, "value"),
        ({"value": [1, None]}, "value"),
    ],
)
def test_patch_refuses_changing_key_or_scope_unknown_fields_and_bad_values(
    site, pump, operator_api, body, field
):
    value = config.set_value("interval", 60, group=site, actor="ada")
    before = written()

    assert_refused(operator_api.patch(value_url(value), body), field)

    assert written() == before
    value.refresh_from_db()
    assert (value.value, value.version) == (60, 1)


def test_put_is_not_offered(site, operator_api):
    value = config.set_value("interval", 60, group=site, actor="ada")
    response = operator_api.put(value_url(value), {"value": 1, "key": "interval"})
    assert response.status_code == 405


def test_delete_removes_the_value_and_the_device_falls_back(site, pump, operator_api):
    config.set_value("interval", 60, group=site, actor="ada")
    own = config.set_value("interval", 5, device=pump, actor="ada")

    response = operator_api.delete(value_url(own))

    assert response.status_code == 204
    assert not ConfigValue.objects.filter(pk=own.pk).exists()
    assert Shadow.objects.get(device=pump, name="config").desired_state == {"interval": 60}
    removal = ConfigChange.objects.order_by("-id").first()
    assert (removal.new_value, removal.actor) == (None, "token:otto")


def test_unknown_value_is_404(operator_api, viewer_api):
    assert viewer_api.get(f"{VALUES}999999/").status_code == 404
    assert operator_api.patch(f"{VALUES}999999/", {"value": 1}).status_code == 404
    assert operator_api.delete(f"{VALUES}999999/").status_code == 404


# --- refusals on create (nothing written) -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "9bad", "value": 1}, "key"),
        ({"key": "a.b", "value": 1}, "key"),
        ({"key": "k" * 65, "value": 1}, "key"),
        ({"key": "", "value": 1}, "key"),
        ({"value": 1}, "key"),
        ({"key": "ok", "value": None}, "value"),
        ({"key": "ok"}, "value"),
        ({"key": "ok", "value": [1, None]}, "value"),
        ({"key": "ok", "value": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}, "value"),
        ({"key": "ok", "value": "x" * 5000}, "value"),
        ({"key": "ok", "value": 1, "version": 3}, "version"),
    ],
)
def test_create_refuses_bad_keys_values_and_unknown_fields(site, pump, operator_api, body, field):
    before = written()

    response = operator_api.post(VALUES, {"group": str(site.pk), **body})

    assert_refused(response, field)
    assert written() == before


def test_create_refuses_a_value_too_large_for_a_members_shadow(site, pump, operator_api):
    config.set_value("a", "x" * 2000, group=site, actor="ada")
    config.set_value("own", "y" * 1500, device=pump, actor="ada")
    before = written()

    response = operator_api.post(VALUES, {"group": str(site.pk), "key": "b", "value": "z" * 1000})

    assert_refused(response, "value")
    assert "pump-7" in response.json()["value"][0]
    assert response.json()["code"] == "invalid_config"
    assert written() == before


@pytest.mark.parametrize("scope", ["both", "neither"])
def test_create_needs_exactly_one_group_or_device(site, pump, operator_api, scope):
    body = {"key": "interval", "value": 1}
    if scope == "both":
        body.update(group=str(site.pk), device="pump-7")
    before = written()

    response = operator_api.post(VALUES, body)

    assert_refused(response, "group")
    assert "device" in response.json()
    assert written() == before


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"group": "5b8d1a52-0000-4000-8000-000000000000"}, "No group has id"),
        ({"group": "not-a-uuid"}, "valid UUID"),
        ({"device": "nobody"}, "No device has device_id nobody"),
    ],
)
def test_create_refuses_unknown_group_or_device(db, operator_api, scope, message):
    response = operator_api.post(VALUES, {**scope, "key": "interval", "value": 1})

    field = next(iter(scope))
    assert_refused(response, field)
    assert message in response.json()[field][0]
    assert not ConfigValue.objects.exists()


def test_create_refuses_a_decommissioned_device(db, operator_api):
    make_device("gone", status=DeviceStatus.DECOMMISSIONED)
    response = operator_api.post(VALUES, {"device": "gone", "key": "interval", "value": 1})
    assert_refused(response, "device")
    assert not ConfigValue.objects.exists()


def test_create_refuses_a_key_already_set_on_the_scope(site, operator_api):
    value = config.set_value("interval", 60, group=site, actor="ada")

    response = operator_api.post(VALUES, {"group": str(site.pk), "key": "interval", "value": 1})

    assert_refused(response, "key")
    assert str(value.pk) in response.json()["key"][0]
    value.refresh_from_db()
    assert value.value == 60


# --- list ------------------------------------------------------------------------------------


def keys_of(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.content
    return sorted(
        (item["key"], item["device"] or item["group"]["name"])
        for item in response.json()["results"]
    )


def test_list_filters_by_group_device_key_and_scope(site, pump, viewer_api):
    other = make_group("other")
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", group=other, actor="ada")
    config.set_value("interval", 5, device=pump, actor="ada")

    assert keys_of(viewer_api.get(VALUES)) == [
        ("interval", "pump-7"),
        ("interval", "site-a"),
        ("mode", "other"),
    ]
    assert keys_of(viewer_api.get(VALUES, {"group": str(site.pk)})) == [("interval", "site-a")]
    assert keys_of(viewer_api.get(VALUES, {"device": "pump-7"})) == [("interval", "pump-7")]
    assert keys_of(viewer_api.get(VALUES, {"key": "mode"})) == [("mode", "other")]
    assert keys_of(viewer_api.get(VALUES, {"scope": "device"})) == [("interval", "pump-7")]
    assert len(keys_of(viewer_api.get(VALUES, {"scope": "group"}))) == 2
    assert viewer_api.get(VALUES, {"scope": "fleet"}).status_code == 400
    assert viewer_api.get(VALUES, {"group": "nope"}).status_code == 400


def test_list_pages_with_a_cursor_newest_first(site, viewer_api):
    for n in range(3):
        config.set_value(f"k{n}", n, group=site, actor="ada")

    first = viewer_api.get(VALUES, {"page_size": 2}).json()
    second = viewer_api.get(first["next"]).json()

    assert [v["key"] for v in first["results"]] == ["k2", "k1"]
    assert [v["key"] for v in second["results"]] == ["k0"]


def populate(count: int) -> None:
    groups = [make_group(f"g-{n}") for n in range(3)]
    for n in range(count):
        device = make_device(f"q-{n:03d}", group=groups[n % 3])
        config.set_value("own", n, device=device, actor="ada")
    for group in groups:
        config.set_value("interval", 60, group=group, actor="ada")


@pytest.mark.parametrize("count", [3, 30])
@pytest.mark.parametrize(
    "url", [VALUES, VALUES + "?scope=device", CHANGES, CHANGES + "?key=own", DRIFT]
)
def test_list_queries_do_not_grow_with_the_fleet(
    viewer_api, django_assert_max_num_queries, count, url
):
    populate(count)
    DeviceConfiguration.objects.update(pushed_at=timezone.now() - timedelta(days=1))
    Device.objects.update(last_seen=timezone.now())
    # Token and user, the user's permissions (2), the page, plus the drift details (2).
    with django_assert_max_num_queries(6):
        response = viewer_api.get(url)
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 3


# --- preview ---------------------------------------------------------------------------------


def test_preview_shows_the_effect_and_writes_nothing(site, viewer_api):
    members = [make_device(f"m{n}", group=site) for n in range(3)]
    config.set_value("mode", "eco", group=site, actor="ada")
    config.set_value("mode", "turbo", device=members[0], actor="ada")
    before = written()

    response = viewer_api.post(PREVIEW, {"group": str(site.pk), "key": "interval", "value": 60})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["devices"] == 3
    assert [item["device_id"] for item in body["sample"]] == ["m0", "m1", "m2"]
    first = body["sample"][0]["configuration"]
    assert first["interval"] == {
        "value": 60,
        "source": "site-a",
        "group_id": str(site.pk),
        "version": None,
    }
    assert first["mode"] == {"value": "turbo", "source": "device", "group_id": None, "version": 1}
    assert body["sample"][1]["configuration"]["mode"]["source"] == "site-a"
    assert written() == before


def test_preview_of_a_device_value(pump, viewer_api):
    response = viewer_api.post(PREVIEW, {"device": "pump-7", "key": "interval", "value": 1})
    assert response.json() == {
        "devices": 1,
        "sample": [
            {
                "device_id": "pump-7",
                "configuration": {
                    "interval": {"value": 1, "source": "device", "group_id": None, "version": None}
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "9bad", "value": 1}, "key"),
        ({"key": "ok", "value": None}, "value"),
        ({"key": "ok", "value": "x" * 5000}, "value"),
        ({"key": "ok", "value": 1, "extra": 1}, "extra"),
    ],
)
def test_preview_refuses_what_the_change_would_refuse(site, pump, viewer_api, body, field):
    before = written()
    assert_refused(viewer_api.post(PREVIEW, {"group": str(site.pk), **body}), field)
    assert written() == before


def test_preview_refuses_a_value_too_large_for_one_members_shadow(site, pump, viewer_api):
    config.set_value("own", "y" * 3000, device=pump, actor="ada")
    response = viewer_api.post(PREVIEW, {"group": str(site.pk), "key": "b", "value": "z" * 1500})
    assert_refused(response, "value")
    assert "pump-7" in response.json()["value"][0]


def test_preview_refuses_both_scopes_and_a_decommissioned_device(site, pump, viewer_api):
    make_device("gone", status=DeviceStatus.DECOMMISSIONED)
    both = {"group": str(site.pk), "device": "pump-7", "key": "a", "value": 1}
    assert_refused(viewer_api.post(PREVIEW, both), "group")
    gone = {"device": "gone", "key": "a", "value": 1}
    assert_refused(viewer_api.post(PREVIEW, gone), "device")


# --- a device's effective configuration ------------------------------------------------------


def test_device_config_shows_each_key_with_source_and_applied(site, pump, viewer_api):
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", group=site, actor="ada")
    config.set_value("mode", "turbo", device=pump, actor="ada")
    report(pump, {"interval": 60, "mode": "eco"})

    response = viewer_api.get(device_config_url("pump-7"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["device_id"] == "pump-7"
    interval, mode = body["configuration"]["interval"], body["configuration"]["mode"]
    assert (interval["value"], interval["source"], interval["group_id"]) == (
        60,
        "site-a",
        str(site.pk),
    )
    assert interval["applied"] is True and interval["applied_at"] and interval["pushed_at"]
    assert (mode["value"], mode["source"], mode["group_id"], mode["version"]) == (
        "turbo",
        "device",
        None,
        1,
    )
    assert mode["applied"] is False and mode["applied_at"] is None
    assert mode["reported"] == "eco"


def test_device_config_of_a_value_not_pushed_yet_has_no_pushed_at(site, pump, viewer_api):
    ConfigValue.objects.create(group=site, key="interval", value=1, updated_by="x")

    entry = viewer_api.get(device_config_url("pump-7")).json()["configuration"]["interval"]

    assert (entry["pushed_at"], entry["applied"], entry["reported"]) == (None, False, None)


def test_device_config_of_an_unknown_device_is_404(db, viewer_api):
    assert viewer_api.get(device_config_url("nobody")).status_code == 404


def test_device_config_queries_are_constant(site, pump, viewer_api, django_assert_max_num_queries):
    for n in range(5):
        config.set_value(f"k{n}", n, group=site, actor="ada")
    # Auth (3), the device, group values, memberships, own values, pushed rows, the shadow.
    with django_assert_max_num_queries(9):
        assert viewer_api.get(device_config_url("pump-7")).status_code == 200


# --- drift and summary -----------------------------------------------------------------------


@pytest.fixture
def drifting(site, settings):
    settings.CONFIG_DRIFT_MINUTES = 15
    late, fine, fresh = (make_device(n, group=site) for n in ("late", "fine", "fresh"))
    config.set_value("interval", 60, group=site, actor="ada")
    report(fine, {"interval": 60})
    report(late, {"interval": 5})
    DeviceConfiguration.objects.exclude(device=fresh).update(
        pushed_at=timezone.now() - timedelta(minutes=20)
    )
    Device.objects.update(last_seen=timezone.now())
    return late


def test_a_device_that_never_connected_is_pending_not_drift(site, drifting, viewer_api):
    never = make_device("never", group=site)
    config.render([never], actor="ada")
    DeviceConfiguration.objects.filter(device=never).update(
        pushed_at=timezone.now() - timedelta(hours=3)
    )

    summary = viewer_api.get(f"/api/v1/groups/{site.pk}/config-summary/").json()
    drifted = [
        d["device_id"]
        for d in viewer_api.get(f"/api/v1/config/drift/?group={site.pk}").json()["results"]
    ]

    assert "never" not in drifted and "late" in drifted
    assert summary["drift"] == 1 and summary["pending"] == 2


def test_drift_lists_devices_with_the_keys_that_differ(site, drifting, viewer_api):
    make_device("elsewhere")
    response = viewer_api.get(DRIFT, {"group": str(site.pk)})

    assert response.status_code == 200, response.content
    [item] = response.json()["results"]
    assert item["device_id"] == "late"
    [key] = item["keys"]
    assert (key["key"], key["desired"], key["reported"], key["version"]) == ("interval", 60, 5, 1)
    assert key["pushed_at"]
    assert [d["device_id"] for d in viewer_api.get(DRIFT).json()["results"]] == ["late"]


def test_drift_refuses_an_unknown_group_and_unknown_parameters(db, viewer_api):
    unknown = "5b8d1a52-0000-4000-8000-000000000000"
    assert_refused(viewer_api.get(DRIFT, {"group": unknown}), "group")
    assert_refused(viewer_api.get(DRIFT, {"group": "nope"}), "group")
    assert_refused(viewer_api.get(DRIFT, {"grup": unknown}), "grup")


def test_group_summary_counts_applied_pending_and_drift(site, drifting, viewer_api):
    response = viewer_api.get(summary_url(site))
    assert response.status_code == 200
    assert response.json() == {"applied": 1, "pending": 1, "drift": 1}


def test_group_summary_of_an_unknown_group_is_404(db, viewer_api):
    assert viewer_api.get("/api/v1/groups/5b8d1a52-0000-4000-8000-000000000000/").status_code == 404
    url = "/api/v1/groups/5b8d1a52-0000-4000-8000-000000000000/config-summary/"
    assert viewer_api.get(url).status_code == 404


# --- change log ------------------------------------------------------------------------------


def test_change_log_newest_first_with_filters(site, pump, viewer_api):
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("interval", 30, group=site, actor="otto")
    config.set_value("mode", "eco", device=pump, actor="otto")

    body = viewer_api.get(CHANGES).json()
    assert [(c["key"], c["version"]) for c in body["results"]] == [
        ("mode", 1),
        ("interval", 2),
        ("interval", 1),
    ]
    latest = body["results"][1]
    assert (latest["old_value"], latest["new_value"], latest["actor"]) == (60, 30, "otto")
    assert (latest["scope"], latest["group"], latest["device"]) == (
        "group site-a",
        str(site.pk),
        None,
    )
    assert len(viewer_api.get(CHANGES, {"key": "interval"}).json()["results"]) == 2
    assert len(viewer_api.get(CHANGES, {"group": str(site.pk)}).json()["results"]) == 2
    by_device = viewer_api.get(CHANGES, {"device": "pump-7"}).json()["results"]
    assert [c["device"] for c in by_device] == ["pump-7"]


def test_change_log_is_read_only(site, admin_api):
    config.set_value("interval", 60, group=site, actor="ada")
    change = ConfigChange.objects.get()
    assert admin_api.get(f"{CHANGES}{change.pk}/").status_code == 200
    assert admin_api.post(CHANGES, {"key": "x"}).status_code == 405
    assert admin_api.delete(f"{CHANGES}{change.pk}/").status_code == 405


# --- permissions -----------------------------------------------------------------------------


def every_endpoint(site, value) -> list[tuple[str, str]]:
    return [
        ("get", VALUES),
        ("post", VALUES),
        ("get", value_url(value)),
        ("patch", value_url(value)),
        ("delete", value_url(value)),
        ("post", PREVIEW),
        ("get", device_config_url("pump-7")),
        ("get", DRIFT),
        ("get", summary_url(site)),
        ("get", CHANGES),
    ]


def test_every_endpoint_needs_authentication(site, pump):
    value = config.set_value("interval", 60, group=site, actor="ada")
    before = written()
    for method, url in every_endpoint(site, value):
        response = getattr(APIClient(), method)(url, {"key": "a", "value": 1}, format="json")
        assert response.status_code == 401, (method, url)
    assert written() == before


def test_viewer_reads_everything_but_changes_nothing(site, pump, viewer_api):
    value = config.set_value("interval", 60, group=site, actor="ada")
    body = {"group": str(site.pk), "key": "a", "value": 1}
    before = written()
    for method, url in every_endpoint(site, value):
        if method == "get":
            assert viewer_api.get(url).status_code == 200, url
        else:
            expected = 200 if url == PREVIEW else 403  # a preview writes nothing
            assert getattr(viewer_api, method)(url, body).status_code == expected, (method, url)
    assert written() == before


def test_a_user_without_a_role_sees_nothing(site, pump):
    from tests.conftest import make_user, token_client

    value = config.set_value("interval", 60, group=site, actor="ada")
    client = token_client(make_user("nobody"))
    for method, url in every_endpoint(site, value):
        assert getattr(client, method)(url, {}).status_code == 403, (method, url)


@pytest.mark.parametrize("role", ["operator_api", "admin_api"])
def test_operators_and_admins_change_values(site, pump, role, request):
    api = request.getfixturevalue(role)
    created = api.post(VALUES, {"group": str(site.pk), "key": "interval", "value": 60})
    assert created.status_code == 201
    url = f"{VALUES}{created.json()['id']}/"
    assert api.patch(url, {"value": 5}).status_code == 200
    assert api.delete(url).status_code == 204
    assert not ConfigValue.objects.exists()


def test_groups_api_exposes_priority(site, admin_api):
    url = f"/api/v1/groups/{site.pk}/"
    assert admin_api.get(url).json()["priority"] == 0
    assert admin_api.patch(url, {"priority": 5}).json()["priority"] == 5
    site.refresh_from_db()
    assert site.priority == 5
