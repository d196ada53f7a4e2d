"""The configuration service on PostgreSQL: layering, pushing into the `config` shadow, the
device's report marking keys applied, versions and the change log, refusals, drift."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from devices import groups
from devices import services as devices
from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal.models import OutboxMessage
from shadows import services as shadows
from shadows.configuration import services as config
from shadows.configuration.keys import ConfigError
from shadows.models import ConfigChange, ConfigValue, DeviceConfiguration, Shadow
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db


def config_shadow(device) -> Shadow:
    return Shadow.objects.get(device=device, name="config")


def deltas(device_id: str) -> list[dict]:
    topic = f"$aws/things/{device_id}/shadow/name/config/update/delta"
    return [
        orjson.loads(bytes(row.payload))["state"]
        for row in OutboxMessage.objects.filter(topic=topic).order_by("id")
    ]


def report(device, state: dict) -> None:
    shadows.update(device, "config", {"state": {"reported": state}}, actor="device")


def rows(device) -> dict[str, DeviceConfiguration]:
    return {row.config_key: row for row in DeviceConfiguration.objects.filter(device=device)}


@pytest.fixture
def site():
    return make_group("site-a")


def test_a_group_value_reaches_every_member_as_the_config_shadows_desired_state(site):
    members = [make_device(f"m{i}", group=site) for i in range(3)]
    outsider = make_device("outsider")

    config.set_value("interval", 60, group=site, actor="otto")

    for device in members:
        assert config_shadow(device).desired_state == {"interval": 60}
        assert deltas(device.device_id) == [{"interval": 60}]
        row = rows(device)["interval"]
        assert (row.config_value, row.version, row.source_group, row.applied) == (
            60,
            1,
            site,
            False,
        )
    assert not Shadow.objects.filter(device=outsider).exists()


def test_the_device_value_overrides_the_group_and_removing_it_falls_back(site):
    device = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="otto")
    own = config.set_value("interval", 5, device=device, actor="otto")

    effective = config.effective_configuration(device)
    assert (effective["interval"].value, effective["interval"].source_name) == (5, "device")
    assert config_shadow(device).desired_state == {"interval": 5}

    config.remove_value(own, actor="otto")

    effective = config.effective_configuration(device)
    assert (effective["interval"].value, effective["interval"].source_name) == (60, "site-a")
    assert config_shadow(device).desired_state == {"interval": 60}
    assert rows(device)["interval"].source_group == site


def test_dynamic_group_priority_decides_between_groups(site):
    device = make_device("d1", group=site, device_type="meter")
    meters = make_group("meters", filters={"field": "device_type", "op": "eq", "value": "meter"})
    config.set_value("mode", "site", group=site, actor="otto")
    config.set_value("mode", "meters", group=meters, actor="otto")
    # Equal priority: the group created last (meters) wins.
    assert config_shadow(device).desired_state == {"mode": "meters"}

    site.priority = 10
    site.save()
    config.render([device], actor="otto")
    assert config_shadow(device).desired_state == {"mode": "site"}
    assert config.effective_configuration(device)["mode"].source_name == "site-a"


def test_removing_the_last_value_removes_the_key_from_the_shadow(site):
    device = make_device("d1", group=site)
    value = config.set_value("debug", True, group=site, actor="otto")
    config.set_value("interval", 10, group=site, actor="otto")

    config.remove_value(value, actor="ada")

    assert config_shadow(device).desired_state == {"interval": 10}
    assert set(rows(device)) == {"interval"}


def test_the_devices_report_marks_the_key_applied(site):
    device = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="otto")
    config.set_value("mode", "eco", group=site, actor="otto")

    report(device, {"interval": 60, "mode": "turbo"})

    state = rows(device)
    assert state["interval"].applied and state["interval"].applied_at is not None
    assert not state["mode"].applied and state["mode"].applied_at is None

    report(device, {"mode": "eco"})
    assert rows(device)["mode"].applied


def test_a_device_that_changes_an_applied_value_itself_is_no_longer_applied(site):
    device = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="otto")
    report(device, {"interval": 60})
    assert rows(device)["interval"].applied

    report(device, {"interval": 30})

    assert not rows(device)["interval"].applied


def test_a_value_the_device_already_reports_is_applied_when_pushed(site):
    device = make_device("d1", group=site)
    report(device, {"interval": 60})

    config.set_value("interval", 60, group=site, actor="otto")

    assert rows(device)["interval"].applied


def test_every_change_bumps_the_version_and_is_logged_with_who(site):
    config.set_value("interval", 60, group=site, actor="otto")
    config.set_value("interval", 30, group=site, actor="ada")
    value = ConfigValue.objects.get(group=site, key="interval")
    assert value.version == 2 and value.updated_by == "ada"

    config.remove_value(value, actor="ada")
    again = config.set_value("interval", 15, group=site, actor="otto")

    assert again.version == 4  # versions continue after a removal
    log = list(ConfigChange.objects.filter(key="interval").order_by("version"))
    assert [(c.version, c.old_value, c.new_value, c.actor) for c in log] == [
        (1, None, 60, "otto"),
        (2, 60, 30, "ada"),
        (3, 30, None, "ada"),
        (4, None, 15, "otto"),
    ]
    assert log[0].scope == "group site-a"


def test_setting_the_same_value_again_changes_nothing(site):
    device = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="otto")
    version = config_shadow(device).version

    config.set_value("interval", 60, group=site, actor="ada")

    assert ConfigValue.objects.get(group=site).version == 1
    assert config_shadow(device).version == version
    assert ConfigChange.objects.count() == 1


def test_a_value_that_would_overflow_a_members_shadow_is_refused_before_anything_is_written(
    site,
):
    big_group = make_group("big", priority=1)
    device = make_device("d1", group=site)
    make_device("d2", group=site)
    config.set_value("a", "x" * 2000, group=site, actor="otto")
    config.set_value("own", "y" * 1500, device=device, actor="otto")
    before = (
        ConfigValue.objects.count(),
        ConfigChange.objects.count(),
        OutboxMessage.objects.count(),
    )

    # Alone it fits; with d1's own value and the site's value it would pass 8 KB (x2) for d1.
    with pytest.raises(ConfigError) as caught:
        config.set_value("b", "z" * 1000, group=site, actor="otto")

    assert caught.value.field == "value"
    assert "d1" in caught.value.message
    after = (
        ConfigValue.objects.count(),
        ConfigChange.objects.count(),
        OutboxMessage.objects.count(),
    )
    assert after == before
    assert config_shadow(device).desired_state == {"a": "x" * 2000, "own": "y" * 1500}
    assert not ConfigValue.objects.filter(group=big_group).exists()


def test_combined_groups_are_checked_together(site):
    other = make_group("other")
    make_device("d1", group=site)
    dynamic = make_group(
        "all-sensors", filters={"field": "device_type", "op": "eq", "value": "sensor"}
    )
    config.set_value("a", "x" * 3000, group=dynamic, actor="otto")
    config.set_value("b", "x" * 900, group=other, actor="otto")  # no members: no effect

    with pytest.raises(ConfigError, match="maximum size"):
        config.set_value("c", "x" * 1200, group=site, actor="otto")


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("9bad", 1, "key"),
        ("a.b", 1, "key"),
        ("ok", None, "value"),
        ("ok", [1, None], "value"),
        ("ok", "x" * 5000, "value"),
    ],
)
def test_bad_keys_and_values_are_refused_with_the_field(site, key, value, field):
    make_device("d1", group=site)
    with pytest.raises(ConfigError) as caught:
        config.set_value(key, value, group=site, actor="otto")
    assert caught.value.field == field
    assert not ConfigValue.objects.exists() and not ConfigChange.objects.exists()


def test_decommissioned_devices_get_nothing(site):
    gone = make_device("gone", group=site, status=DeviceStatus.DECOMMISSIONED)
    config.set_value("interval", 60, group=site, actor="otto")
    assert not Shadow.objects.filter(device=gone).exists()
    with pytest.raises(ConfigError):
        config.set_value("interval", 1, device=gone, actor="otto")


def test_big_groups_are_rendered_by_the_task_in_batches(
    site, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(config, "RENDER_INLINE_LIMIT", 2)
    monkeypatch.setattr(config, "RENDER_BATCH", 2)
    devices = [make_device(f"m{i}", group=site) for i in range(5)]

    with django_capture_on_commit_callbacks() as callbacks:
        config.set_value("interval", 60, group=site, actor="otto")
    assert not Shadow.objects.filter(name="config").exists()  # not inline: too many members
    assert len(callbacks) == 1

    assert config.render_group(site, actor="otto") == 5
    for device in devices:
        assert config_shadow(device).desired_state == {"interval": 60}


def test_drift_lists_devices_whose_values_are_not_applied_after_the_grace_period(site, settings):
    settings.CONFIG_DRIFT_MINUTES = 15
    late, fine, fresh = (make_device(n, group=site) for n in ("late", "fine", "fresh"))
    config.set_value("interval", 60, group=site, actor="otto")
    report(fine, {"interval": 60})
    report(late, {"interval": 5})
    DeviceConfiguration.objects.exclude(device=fresh).update(
        pushed_at=timezone.now() - timedelta(minutes=20)
    )
    Device.objects.update(last_seen=timezone.now())  # they connected, and did not apply

    drifted = list(config.drifted_devices(site))
    assert drifted == [late]
    details = config.drift_details(drifted)[late.pk]
    assert details == [
        {
            "key": "interval",
            "desired": 60,
            "reported": 5,
            "reported_present": True,
            "version": 1,
            "pushed_at": DeviceConfiguration.objects.get(device=late).pushed_at,
        }
    ]
    assert config.group_summary(site) == {"applied": 1, "pending": 1, "drift": 1}


def test_reconcile_gives_a_new_member_its_configuration_and_takes_it_from_one_that_left(site):
    first = make_device("d1", group=site)
    config.set_value("interval", 60, group=site, actor="otto")
    newcomer = make_device("d2", group=site)  # registered after the change
    first.group = None
    first.save(update_fields=["group"])  # moved out of the group

    assert config.reconcile() == 2

    assert config_shadow(newcomer).desired_state == {"interval": 60}
    assert config_shadow(first).desired_state == {}
    assert set(rows(first)) == set()
    assert config.reconcile() == 0  # nothing left to do


def test_reconcile_follows_dynamic_membership_and_priority(site):
    device = make_device("d1", group=site, firmware_version="1.0.0")
    new_firmware = make_group(
        "new-firmware",
        filters={"field": "firmware_version", "op": "gte", "value": "2.0.0"},
        priority=5,
    )
    config.set_value("mode", "site", group=site, actor="otto")
    config.set_value("mode", "fw2", group=new_firmware, actor="otto")
    assert config_shadow(device).desired_state == {"mode": "site"}

    device.firmware_version = "2.1.0"
    device.save(update_fields=["firmware_version"])
    config.reconcile()
    assert config_shadow(device).desired_state == {"mode": "fw2"}

    new_firmware.priority = 0
    new_firmware.save()
    config.reconcile(new_firmware)
    # Equal priority now: the newest group (new-firmware) still wins.
    assert config_shadow(device).desired_state == {"mode": "fw2"}
    site.priority = 9
    site.save()
    config.reconcile(site)
    assert config_shadow(device).desired_state == {"mode": "site"}


def test_saving_a_configured_group_queues_a_reconcile_after_commit(
    site, django_capture_on_commit_callbacks
):
    bare = make_group("bare")
    config.set_value("interval", 60, group=site, actor="otto")
    with django_capture_on_commit_callbacks() as callbacks:
        groups.update_group(bare, {"priority": 3}, actor="otto")
    assert callbacks == []
    with django_capture_on_commit_callbacks() as callbacks:
        groups.update_group(site, {"priority": 3}, actor="otto")
    assert len(callbacks) == 1


def test_a_device_moved_in_or_out_of_a_configured_group_queues_a_reconcile(
    site, django_capture_on_commit_callbacks
):
    bare = make_group("bare")
    device = make_device("d1", group=bare)
    config.set_value("interval", 60, group=site, actor="otto")
    with django_capture_on_commit_callbacks() as callbacks:
        devices.update_device(device, {"group": site}, actor="otto")
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        groups.remove_devices(site, [device], actor="otto")
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        groups.assign_devices([device], bare, actor="otto")
    assert callbacks == []  # neither group sets configuration for it any more


def test_deleting_a_group_falls_back_to_the_other_layers_at_the_next_reconcile(
    site, django_capture_on_commit_callbacks
):
    fallback = make_group("all", filters={"field": "device_type", "op": "eq", "value": "sensor"})
    site.priority = 1
    site.save()
    device = make_device("d1", group=site)
    config.set_value("mode", "base", group=fallback, actor="otto")
    config.set_value("mode", "site", group=site, actor="otto")
    config.set_value("debug", True, group=site, actor="otto")
    assert config_shadow(device).desired_state == {"debug": True, "mode": "site"}

    with django_capture_on_commit_callbacks() as callbacks:
        groups.delete_group(site, actor="otto")
    assert len(callbacks) == 1  # a reconcile is queued

    config.reconcile()
    assert config_shadow(device).desired_state == {"mode": "base"}
    assert rows(device)["mode"].source_group == fallback


def test_creating_a_key_that_is_already_set_is_refused_and_changes_nothing(site):
    first = config.set_value("interval", 60, group=site, actor="otto", create=True)
    with pytest.raises(ConfigError) as caught:
        config.set_value("interval", 30, group=site, actor="ada", create=True)
    assert caught.value.field == "key" and str(first.pk) in caught.value.message
    assert ConfigValue.objects.get(pk=first.pk).value == 60


def test_updating_a_value_removed_meanwhile_does_not_bring_it_back(site):
    value = config.set_value("interval", 60, group=site, actor="otto")
    stale = ConfigValue.objects.get(pk=value.pk)
    config.remove_value(value, actor="ada")

    with pytest.raises(config.ConfigValueGone):
        config.update_value(stale, 30, actor="otto")
    assert not ConfigValue.objects.exists()


def test_preview_refuses_what_the_change_would_refuse(site):
    gone = make_device("gone", status=DeviceStatus.DECOMMISSIONED)
    with pytest.raises(ConfigError, match="null"):
        config.preview("interval", None, group=site)
    with pytest.raises(ConfigError, match="decommissioned"):
        config.preview("interval", 1, device=gone)


def test_reports_in_one_bridge_batch_mark_each_devices_keys_as_one_by_one_would(site):
    from tests.shadows.test_batch import run_batch
    from tests.shadows.test_hooks import named_update

    first = make_device("d1", group=site, status=DeviceStatus.ACTIVE)
    second = make_device("d2", group=site, status=DeviceStatus.ACTIVE)
    config.set_value("interval", 60, group=site, actor="otto")
    config.set_value("mode", "eco", group=site, actor="otto")

    run_batch(
        [
            named_update("d1", "config", {"interval": 60, "mode": "eco"}, "a1"),
            named_update("d2", "config", {"interval": 60}, "b1"),
            named_update("d1", "config", {"mode": "turbo"}, "a2"),  # applied, then not
            named_update("d2", "config", {"mode": "eco"}, "b2"),
        ]
    )

    assert {k: r.applied for k, r in rows(first).items()} == {"interval": True, "mode": False}
    assert {k: r.applied for k, r in rows(second).items()} == {"interval": True, "mode": True}
    assert rows(first)["mode"].applied_at is None
    assert config_shadow(first).reported_state == {"interval": 60, "mode": "turbo"}
