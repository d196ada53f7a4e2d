"""The operators' configuration pages: values through the admin, the device and group pages,
the drift page, roles and query counts."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device
from shadows import services as shadows
from shadows.configuration import services as config
from shadows.models import ConfigChange, ConfigValue, DeviceConfiguration, Shadow
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db

VALUES = reverse("admin:shadows_configvalue_changelist")
ADD_VALUE = reverse("admin:shadows_configvalue_add")
PUSHED = reverse("admin:shadows_deviceconfiguration_changelist")
CHANGES = reverse("admin:shadows_configchange_changelist")
DRIFT = reverse("shadows:config-drift")


def value_url(value: ConfigValue, action: str = "change") -> str:
    return reverse(f"admin:shadows_configvalue_{action}", args=[value.pk])


def device_page(device) -> str:
    return reverse("admin:devices_device_change", args=[device.pk])


def group_page(group) -> str:
    return reverse("admin:devices_devicegroup_change", args=[group.pk])


def desired(device) -> dict:
    shadow = Shadow.objects.filter(device=device, name="config").first()
    return shadow.desired_state if shadow else {}


def report(device, state: dict) -> None:
    shadows.update(device, "config", {"state": {"reported": state}}, actor="device")


def age_pushes(minutes: int = 60) -> None:
    """Push times in the past, beyond the drift grace period, to devices that have connected."""
    DeviceConfiguration.objects.update(pushed_at=timezone.now() - timedelta(minutes=minutes))
    Device.objects.update(last_seen=timezone.now())


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.fixture
def site():
    return make_group("site-a")


@pytest.fixture(params=["operator", "viewer"])
def staff(request, client):
    user = request.getfixturevalue(request.param)
    client.force_login(user)
    return user


# -- adding, changing, removing values -------------------------------------------------------


def test_operator_adds_a_group_value_and_it_reaches_the_members(client, operator, site):
    device = make_device("d1", group=site)
    client.force_login(operator)

    response = client.post(ADD_VALUE, {"group": site.pk, "key": "interval", "value": "60"})

    assert response.status_code == 302
    assert desired(device) == {"interval": 60}
    change = ConfigChange.objects.get()
    assert (change.key, change.new_value, change.actor, change.scope) == (
        "interval",
        60,
        "otto",
        "group site-a",
    )
    assert ConfigValue.objects.get().updated_by == "otto"


def test_operator_sets_a_value_on_one_device(client, operator, site):
    device, other = make_device("d1", group=site), make_device("d2", group=site)
    client.force_login(operator)

    response = client.post(ADD_VALUE, {"device": device.pk, "key": "mode", "value": '"eco"'})

    assert response.status_code == 302
    assert desired(device) == {"mode": "eco"}
    assert desired(other) == {}


def test_operator_changes_a_value_and_the_change_is_pushed_and_logged(client, operator, site):
    device = make_device("d1", group=site)
    value = config.set_value("interval", 60, group=site, actor="ada")
    client.force_login(operator)

    response = client.post(value_url(value), {"value": "30"})

    assert response.status_code == 302
    value.refresh_from_db()
    assert (value.value, value.version, value.updated_by) == (30, 2, "otto")
    assert desired(device) == {"interval": 30}
    latest = ConfigChange.objects.order_by("-version").first()
    assert (latest.old_value, latest.new_value, latest.actor) == (60, 30, "otto")


def test_operator_removes_a_value_and_the_key_leaves_the_shadow(client, operator, site):
    device = make_device("d1", group=site)
    value = config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", group=site, actor="ada")
    client.force_login(operator)

    response = client.post(value_url(value, "delete"), {"post": "yes"})

    assert response.status_code == 302
    assert desired(device) == {"mode": "eco"}
    removed = ConfigChange.objects.get(key="interval", new_value__isnull=True)
    assert removed.actor == "otto"


def test_operator_removes_values_with_the_list_action(client, operator, site):
    device = make_device("d1", group=site)
    values = [config.set_value(k, 1, group=site, actor="ada") for k in ("a", "b")]
    client.force_login(operator)

    client.post(
        VALUES,
        {"action": "delete_selected", "_selected_action": [v.pk for v in values], "post": "yes"},
    )

    assert not ConfigValue.objects.exists()
    assert desired(device) == {}
    assert ConfigChange.objects.filter(new_value__isnull=True, actor="otto").count() == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"key": "9lives", "value": "1"}, "key"),
        ({"key": "bad key", "value": "1"}, "key"),
        ({"key": "blob", "value": '"' + "x" * 5000 + '"'}, "value"),
        ({"key": "nested", "value": '{"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}'}, "value"),
        ({"key": "nothing", "value": "null"}, "value"),
        ({"key": "text", "value": "eco"}, "value"),
    ],
)
def test_a_refused_value_shows_a_form_error_and_writes_nothing(client, operator, site, data, field):
    device = make_device("d1", group=site)
    client.force_login(operator)

    response = client.post(ADD_VALUE, {"group": site.pk, **data})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    assert not ConfigValue.objects.exists()
    assert not ConfigChange.objects.exists()
    assert desired(device) == {}


def test_a_value_that_overflows_a_devices_whole_configuration_is_refused(client, operator, site):
    device = make_device("d1", group=site)
    config.set_value("first", "x" * 1800, device=device, actor="ada")
    client.force_login(operator)

    response = client.post(
        ADD_VALUE, {"group": site.pk, "key": "second", "value": '"' + "y" * 2500 + '"'}
    )

    errors = response.context["adminform"].form.errors["value"]
    assert "d1" in errors[0]
    assert not ConfigValue.objects.filter(group=site).exists()
    assert desired(device) == {"first": "x" * 1800}


def test_a_value_needs_exactly_one_group_or_device(client, operator, site):
    device = make_device("d1")
    client.force_login(operator)

    neither = client.post(ADD_VALUE, {"key": "interval", "value": "1"})
    both = client.post(
        ADD_VALUE, {"group": site.pk, "device": device.pk, "key": "interval", "value": "1"}
    )

    for response in (neither, both):
        assert "exactly one group or one device" in response.text
    assert not ConfigValue.objects.exists()


def test_adding_an_existing_key_is_refused_with_a_form_error(client, operator, site):
    config.set_value("interval", 60, group=site, actor="ada")
    client.force_login(operator)

    response = client.post(ADD_VALUE, {"group": site.pk, "key": "interval", "value": "5"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert ConfigValue.objects.get().value == 60


def test_a_decommissioned_device_cannot_get_a_value(client, operator):
    device = make_device("gone", status=DeviceStatus.DECOMMISSIONED)
    client.force_login(operator)

    response = client.post(ADD_VALUE, {"device": device.pk, "key": "a", "value": "1"})

    assert response.context["adminform"].form.errors["device"]
    assert not ConfigValue.objects.exists()


def test_viewer_sees_values_but_cannot_change_them(client, viewer, site):
    value = config.set_value("interval", 60, group=site, actor="ada")
    client.force_login(viewer)

    assert "interval" in client.get(VALUES).text
    assert client.get(value_url(value)).status_code == 200
    assert client.get(ADD_VALUE).status_code == 403
    assert client.post(ADD_VALUE, {"group": site.pk, "key": "b", "value": "1"}).status_code == 403
    assert client.post(value_url(value), {"value": "1"}).status_code == 403
    assert client.post(value_url(value, "delete"), {"post": "yes"}).status_code == 403
    value.refresh_from_db()
    assert value.value == 60 and ConfigChange.objects.count() == 1


def test_nobody_edits_what_was_pushed_or_the_change_log(client, fleet_admin, site):
    make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="ada")
    client.force_login(fleet_admin)
    row, change = DeviceConfiguration.objects.get(), ConfigChange.objects.get()

    assert client.get(reverse("admin:shadows_deviceconfiguration_add")).status_code == 403
    assert client.get(reverse("admin:shadows_configchange_add")).status_code == 403
    deleted = client.post(
        reverse("admin:shadows_configchange_delete", args=[change.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 403
    page = client.get(reverse("admin:shadows_deviceconfiguration_change", args=[row.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.text


# -- lists ------------------------------------------------------------------------------------


def test_value_list_filters_by_key_scope_and_group(client, operator, site):
    device = make_device("d1")
    other = make_group("site-b")
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", group=other, actor="ada")
    config.set_value("mode", "turbo", device=device, actor="ada")
    client.force_login(operator)

    def listed(query: str) -> list[str]:
        response = client.get(VALUES + query)
        return sorted(f"{v.key}@{v.scope}" for v in response.context["cl"].result_list)

    assert listed("?key=mode") == ["mode@device d1", "mode@group site-b"]
    assert listed("?scope=devices") == ["mode@device d1"]
    assert listed(f"?group={site.pk}") == ["interval@group site-a"]
    assert listed("?q=interv") == ["interval@group site-a"]


def test_list_pages_queries_do_not_grow_with_rows(client, staff, site):
    def grow(prefix: str, n: int) -> None:
        group = make_group(f"{prefix}-group")
        for i in range(n):
            device = make_device(f"{prefix}-{i}", group=group)
            config.set_value("own", i, device=device, actor="ada")
        config.set_value("interval", 60, group=group, actor="ada")
        config.set_value(f"{prefix}-key", True, group=group, actor="ada")
        report(device, {"interval": 60})

    grow("a", 2)
    before = {url: count_queries(client, url) for url in (VALUES, PUSHED, CHANGES)}
    grow("b", 12)
    after = {url: count_queries(client, url) for url in (VALUES, PUSHED, CHANGES)}

    assert after == before
    assert max(after.values()) <= 10


def test_pushed_configuration_filters_by_applied_and_key(client, operator, site):
    device = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", group=site, actor="ada")
    report(device, {"interval": 60})
    client.force_login(operator)

    def listed(query: str) -> list[str]:
        return [r.config_key for r in client.get(PUSHED + query).context["cl"].result_list]

    assert listed("?applied__exact=1") == ["interval"]
    assert listed("?applied__exact=0") == ["mode"]
    assert listed("?config_key=mode") == ["mode"]


# -- the device and group pages --------------------------------------------------------------


def test_device_page_shows_value_source_and_applied_state(client, staff, site):
    device = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", device=device, actor="ada")
    config.set_value("level", 3, group=site, actor="ada")
    report(device, {"interval": 60})
    DeviceConfiguration.objects.filter(config_key="level").update(
        pushed_at=timezone.now() - timedelta(hours=2)
    )
    Device.objects.update(last_seen=timezone.now())

    response = client.get(device_page(device))

    rows = {row["key"]: row for row in response.context["configuration"]}
    assert (rows["interval"]["value"], rows["interval"]["source"]) == ("60", "site-a")
    assert rows["interval"]["state"] == "applied"
    assert (rows["mode"]["value"], rows["mode"]["source"], rows["mode"]["state"]) == (
        '"eco"',
        "device",
        "pending",
    )
    assert rows["level"]["state"] == "drift"
    html = response.text
    assert 'id="device-configuration"' in html
    assert f'href="{group_page(site)}">site-a</a>' in html
    # Each state as a badge, in words and colour.
    assert 'data-status="applied">applied<' in html and 'data-status="pending">pending<' in html


def test_device_page_offers_setting_a_value_to_operators_only(client, request):
    device = make_device("d1")
    for role, offered in (("operator", True), ("viewer", False)):
        client.force_login(request.getfixturevalue(role))
        html = client.get(device_page(device)).text
        assert "No configuration applies to this device." in html
        assert (f"{ADD_VALUE}?device={device.pk}" in html) is offered


def test_device_page_queries_do_not_grow_with_configuration(client, operator, site):
    device = make_device("d1", group=site)
    config.set_value("a", 1, group=site, actor="ada")
    client.force_login(operator)
    # The first admin page of a process looks its content type up once (then cached).
    count_queries(client, device_page(device))
    few = count_queries(client, device_page(device))
    for i in range(10):
        config.set_value(f"g{i}", i, group=site, actor="ada")
        config.set_value(f"d{i}", i, device=device, actor="ada")
    assert count_queries(client, device_page(device)) == few


def test_group_page_shows_values_priority_and_summary(client, operator, site):
    applied, _pending, late = (make_device(f"d{i}", group=site) for i in range(3))
    make_device("unconfigured")
    config.set_value("interval", 60, group=site, actor="ada")
    report(applied, {"interval": 60})
    DeviceConfiguration.objects.filter(device=late).update(
        pushed_at=timezone.now() - timedelta(hours=1)
    )
    Device.objects.update(last_seen=timezone.now())
    client.force_login(operator)

    response = client.get(group_page(site))

    assert response.context["config_summary"] == {"applied": 1, "pending": 1, "drift": 1}
    html = response.text
    assert "interval" in html and 'name="priority"' in html
    assert "the highest priority wins" in html
    assert f"{DRIFT}?group={site.pk}" in html
    assert f"{ADD_VALUE}?group={site.pk}" in html


def test_operator_changes_a_groups_priority(client, operator, site):
    client.force_login(operator)
    response = client.post(
        group_page(site), {"name": "site-a", "description": "", "filters": "{}", "priority": "7"}
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.priority == 7


# -- the drift page ---------------------------------------------------------------------------


def drifted_fleet(site):
    """Two members of site-a drift (one never reported, one reported another value), one member
    applied, one outsider drifts on its own value, and one member is still within the grace."""
    late_silent, late_wrong, fine = (make_device(n, group=site) for n in ("s1", "s2", "s3"))
    outsider = make_device("x1")
    config.set_value("interval", 60, group=site, actor="ada")
    config.set_value("mode", "eco", group=site, actor="ada")
    config.set_value("debug", True, device=outsider, actor="ada")
    report(late_wrong, {"interval": 60, "mode": "turbo"})
    report(fine, {"interval": 60, "mode": "eco"})
    age_pushes()
    fresh = make_device("s4", group=site)
    config.render([fresh], actor="ada")
    return late_silent, late_wrong, outsider


def drift_rows(response) -> dict[str, list[str]]:
    return {
        device.device_id: [k["key"] for k in keys] for device, keys in response.context["devices"]
    }


def test_drift_page_lists_exactly_the_drifted_devices_and_their_keys(client, staff, site):
    drifted_fleet(site)

    response = client.get(DRIFT)

    assert response.status_code == 200
    assert drift_rows(response) == {"s1": ["interval", "mode"], "s2": ["mode"], "x1": ["debug"]}
    html = response.text
    assert "not reported" in html and "<code>&quot;turbo&quot;</code>" in html
    assert response.context["summary"] == [(site, {"applied": 1, "pending": 1, "drift": 2})]


def test_drift_page_filters_by_group(client, operator, site):
    drifted_fleet(site)
    client.force_login(operator)

    response = client.get(DRIFT, {"group": site.pk})

    assert sorted(drift_rows(response)) == ["s1", "s2"]
    assert f'<option value="{site.pk}" selected>' in response.text


def test_drift_page_ignores_a_bad_group(client, operator, site):
    drifted_fleet(site)
    client.force_login(operator)
    response = client.get(DRIFT, {"group": "not-a-uuid"})
    assert sorted(drift_rows(response)) == ["s1", "s2", "x1"]


def test_drift_page_pages_fifty_devices(client, operator, site):
    for i in range(55):
        make_device(f"p{i:02d}", group=site)
    config.set_value("interval", 60, group=site, actor="ada")
    age_pushes()
    client.force_login(operator)

    first, second = client.get(DRIFT), client.get(DRIFT, {"page": 2})

    assert len(drift_rows(first)) == 50 and len(drift_rows(second)) == 5
    assert "page=2" in first.text


def test_drift_page_needs_a_login_and_the_permission(client, db):
    assert client.get(DRIFT).status_code == 302
    client.force_login(User.objects.create_user("nobody", is_staff=True))
    assert client.get(DRIFT).status_code == 403


def test_drift_page_queries_do_not_grow_with_drift(client, operator, site):
    drifted_fleet(site)
    client.force_login(operator)
    few = count_queries(client, DRIFT)
    for i in range(20):
        make_device(f"more-{i}", group=site)
    config.set_value("extra", 1, group=site, actor="ada")
    age_pushes()
    assert count_queries(client, DRIFT) == few


def test_value_list_links_to_the_drift_page(client, operator):
    client.force_login(operator)
    assert f'href="{DRIFT}"' in client.get(VALUES).text


def test_add_page_from_the_group_page_starts_with_the_group(client, operator, site):
    client.force_login(operator)
    response = client.get(ADD_VALUE, {"group": site.pk})
    assert response.status_code == 200
    assert response.context["adminform"].form.initial["group"] == str(site.pk)
    assert f'<option value="{site.pk}" selected>site-a</option>' in response.text
