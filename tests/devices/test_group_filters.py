"""The dynamic-group filter language compiled to SQL, run against the real database."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from devices.group_filters import FilterError, compile_filters, validate_filters
from devices.models import Device, DeviceGroup
from shadows.models import Shadow
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db


def leaf(field, op, value=None, **extra):
    node = {"field": field, "op": op}
    if value is not None or extra.get("with_value"):
        node["value"] = value
    return node


def matching(document) -> list[str]:
    found = Device.objects.filter(compile_filters(document)).order_by("device_id")
    return list(found.values_list("device_id", flat=True))


def reported(device, state: dict, name: str = ""):
    Shadow.objects.create(device=device, name=name, reported_state=state, live=True)


# -- device columns ---------------------------------------------------------------------------


@pytest.fixture
def fleet():
    make_device("cam-1", device_type="camera", manufacturer="Acme", model="C1")
    make_device(
        "cam-2",
        device_type="camera",
        manufacturer="Acme",
        model="C2",
        status="active",
        gateway="aws",
    )
    make_device("sen-1", device_type="sensor", manufacturer="", model="S1", status="active")
    make_device("sen-2", device_type="sensor", manufacturer="Bolt", status="maintenance")


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (leaf("device_type", "eq", "camera"), ["cam-1", "cam-2"]),
        (leaf("device_type", "ne", "camera"), ["sen-1", "sen-2"]),
        (leaf("model", "in", ["C2", "S1"]), ["cam-2", "sen-1"]),
        (leaf("manufacturer", "exists"), ["cam-1", "cam-2", "sen-2"]),
        (leaf("manufacturer", "exists", False), ["sen-1"]),
        (leaf("model", "prefix", "C"), ["cam-1", "cam-2"]),
        (leaf("status", "eq", "active"), ["cam-2", "sen-1"]),
        (leaf("status", "in", ["registered", "maintenance"]), ["cam-1", "sen-2"]),
        (leaf("status", "ne", "active"), ["cam-1", "sen-2"]),
        (leaf("gateway", "eq", "aws"), ["cam-2"]),
        (leaf("gateway", "ne", "aws"), ["cam-1", "sen-1", "sen-2"]),
        (leaf("gateway", "in", ["mosquitto"]), ["cam-1", "sen-1", "sen-2"]),
    ],
)
def test_text_operators(fleet, node, expected):
    assert matching(node) == expected


def test_prefix_is_literal_not_a_pattern():
    make_device("a", model="50%_off")
    make_device("b", model="500")
    assert matching(leaf("model", "prefix", "50%")) == ["a"]


def test_nested_all_any_not(fleet):
    document = {
        "all": [
            {"any": [leaf("device_type", "eq", "sensor"), leaf("model", "eq", "C1")]},
            {"not": {"all": [leaf("status", "eq", "maintenance"), leaf("manufacturer", "exists")]}},
        ]
    }
    assert matching(document) == ["cam-1", "sen-1"]
    assert matching({"not": document}) == ["cam-2", "sen-2"]


# -- versions ---------------------------------------------------------------------------------


@pytest.fixture
def versions():
    for device_id, version in [
        ("v-1_9_3", "1.9.3"),
        ("v-1_10_0", "1.10.0"),
        ("v-1_2", "1.2"),
        ("v-2_0", "2.0"),
        ("v-2_0_0", "2.0.0"),
        ("v-2_0_1", "2.0.1"),
        ("v-beta", "2.1-beta"),
        ("v-v3", "v3"),
        ("v-empty", ""),
        ("v-huge", "99999999999.1"),
    ]:
        make_device(device_id, firmware_version=version)


def test_versions_compare_numerically_not_as_text(versions):
    assert matching(leaf("firmware_version", "gt", "1.9.3")) == [
        "v-1_10_0",
        "v-2_0",
        "v-2_0_0",
        "v-2_0_1",
    ]
    assert matching(leaf("firmware_version", "lt", "1.10")) == ["v-1_2", "v-1_9_3"]


def test_trailing_zero_parts_do_not_count(versions):
    # Documented: 2.0 and 2.0.0 are the same version for comparisons.
    assert matching(leaf("firmware_version", "gte", "2")) == ["v-2_0", "v-2_0_0", "v-2_0_1"]
    assert matching(leaf("firmware_version", "lte", "2.0.0")) == [
        "v-1_10_0",
        "v-1_2",
        "v-1_9_3",
        "v-2_0",
        "v-2_0_0",
    ]
    assert matching(leaf("firmware_version", "lt", "2.0.0")) == ["v-1_10_0", "v-1_2", "v-1_9_3"]
    # eq compares the stored text exactly.
    assert matching(leaf("firmware_version", "eq", "2.0")) == ["v-2_0"]


def test_malformed_stored_versions_never_match_a_comparison(versions):
    everything = {
        "any": [leaf("firmware_version", "lt", "1"), leaf("firmware_version", "gte", "1")]
    }
    assert set(matching(everything)) == {
        "v-1_9_3",
        "v-1_10_0",
        "v-1_2",
        "v-2_0",
        "v-2_0_0",
        "v-2_0_1",
    }
    # ...and `not` is their exact complement: malformed versions are "not greater".
    assert matching({"not": leaf("firmware_version", "gte", "1")}) == [
        "v-beta",
        "v-empty",
        "v-huge",
        "v-v3",
    ]


def test_hardware_version_is_version_aware_too():
    make_device("h-9", hardware_version="9")
    make_device("h-10", hardware_version="10.0.1")
    assert matching(leaf("hardware_version", "gt", "9.5")) == ["h-10"]
    assert matching(leaf("hardware_version", "prefix", "10.")) == ["h-10"]


def test_firmware_comparisons_can_use_the_version_index(versions):
    """The compiled comparison is the indexed expression (device_firmware_parts_idx): if the two
    drift apart, firmware filters silently fall back to parsing every device's version."""
    from django.db import connection

    query = Device.objects.filter(compile_filters(leaf("firmware_version", "gt", "1.9.3")))
    sql, params = query.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "device_firmware_parts_idx" in plan


# -- groups, online, last_seen ----------------------------------------------------------------


def test_group_names_static_groups():
    north, south = make_group("north"), make_group("south")
    make_device("n", group=north)
    make_device("s", group=south)
    make_device("none")
    assert matching(leaf("group", "eq", "north")) == ["n"]
    assert matching(leaf("group", "in", ["north", "south"])) == ["n", "s"]
    assert matching(leaf("group", "ne", "north")) == ["none", "s"]
    assert matching(leaf("group", "exists", False)) == ["none"]


def seen(device_id: str, ago: datetime.timedelta | None):
    device = make_device(device_id)
    if ago is not None:
        Device.objects.filter(pk=device.pk).update(last_seen=timezone.now() - ago)


@pytest.fixture
def seen_fleet(settings):
    settings.DEVICE_ONLINE_WINDOW_SECONDS = 300
    seen("now", datetime.timedelta(seconds=10))
    seen("hour", datetime.timedelta(minutes=90))
    seen("week", datetime.timedelta(days=8))
    seen("never", None)


@pytest.mark.usefixtures("last_seen_online")
def test_online_and_offline(seen_fleet):
    assert matching(leaf("online", "eq", True)) == ["now"]
    assert matching(leaf("online", "eq", False)) == ["hour", "never", "week"]
    assert matching(leaf("online", "ne", True)) == ["hour", "never", "week"]
    assert matching(leaf("online", "eq", True)) == list(
        Device.objects.online().values_list("device_id", flat=True)
    )


def test_last_seen_relative_and_absolute(seen_fleet):
    assert matching(leaf("last_seen", "gte", "-1h")) == ["now"]
    assert matching(leaf("last_seen", "lt", "-1h")) == ["hour", "week"]
    assert matching(leaf("last_seen", "lt", "-7d")) == ["week"]
    assert matching(leaf("last_seen", "exists", False)) == ["never"]
    since = (timezone.now() - datetime.timedelta(days=2)).isoformat()
    assert matching(
        {"all": [leaf("last_seen", "gt", since), leaf("last_seen", "lte", "-30m")]}
    ) == ["hour"]
    assert matching({"not": leaf("last_seen", "gte", "-1h")}) == ["hour", "never", "week"]


# -- JSON: metadata, location, reported -------------------------------------------------------


@pytest.fixture
def metadata_fleet():
    make_device("m-berlin", metadata={"site": "berlin", "floor": 3, "rack": {"row": "a"}})
    make_device("m-paris", metadata={"site": "paris", "floor": 12})
    make_device("m-text", metadata={"site": "bern", "floor": "9"})
    make_device("m-none", metadata={})


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (leaf("metadata.site", "eq", "berlin"), ["m-berlin"]),
        (leaf("metadata.site", "ne", "berlin"), ["m-none", "m-paris", "m-text"]),
        (leaf("metadata.site", "in", ["berlin", "paris"]), ["m-berlin", "m-paris"]),
        (leaf("metadata.site", "prefix", "ber"), ["m-berlin", "m-text"]),
        (leaf("metadata.site", "exists"), ["m-berlin", "m-paris", "m-text"]),
        (leaf("metadata.site", "exists", False), ["m-none"]),
        (leaf("metadata.rack.row", "eq", "a"), ["m-berlin"]),
        (leaf("metadata.rack.row", "exists"), ["m-berlin"]),
        (leaf("metadata.floor", "eq", 3), ["m-berlin"]),
        (leaf("metadata.floor", "eq", "9"), ["m-text"]),
        # Numbers numerically (3 < 10 < 12), strings as strings, never across types.
        (leaf("metadata.floor", "lt", 10), ["m-berlin"]),
        (leaf("metadata.floor", "gte", 3.5), ["m-paris"]),
        (leaf("metadata.floor", "gt", "10"), ["m-text"]),
        (leaf("metadata.site", "lte", "bern"), ["m-berlin", "m-text"]),
        ({"not": leaf("metadata.floor", "lt", 10)}, ["m-none", "m-paris", "m-text"]),
    ],
)
def test_metadata_keys(metadata_fleet, node, expected):
    assert matching(node) == expected


def test_location_keys_with_devices_without_location():
    make_device("here", location={"city": "berlin", "lat": 52.5})
    make_device("there", location={"city": "oslo", "lat": 59.9})
    make_device("nowhere")
    assert matching(leaf("location.lat", "gt", 55)) == ["there"]
    assert matching(leaf("location.city", "ne", "berlin")) == ["nowhere", "there"]
    assert matching(leaf("location.city", "exists", False)) == ["nowhere"]
    assert matching({"not": leaf("location.lat", "gt", 55)}) == ["here", "nowhere"]


def test_reported_values_from_the_classic_shadow():
    low, full, text, named_only = (make_device(i) for i in ("low", "full", "text", "named"))
    make_device("no-shadow")
    reported(low, {"battery": 12, "net": {"rssi": -90}})
    reported(full, {"battery": 100, "net": {"rssi": -40}})
    reported(text, {"battery": "low"})
    reported(named_only, {"battery": 5}, name="config")  # not the classic shadow
    assert matching(leaf("reported.battery", "lt", 20)) == ["low"]
    assert matching(leaf("reported.battery", "gte", 20)) == ["full"]
    assert matching(leaf("reported.battery", "eq", "low")) == ["text"]
    assert matching(leaf("reported.net.rssi", "lte", -50)) == ["low"]
    assert matching(leaf("reported.battery", "exists")) == ["full", "low", "text"]
    assert matching(leaf("reported.battery", "ne", 12)) == ["full", "named", "no-shadow", "text"]
    assert matching(
        {"all": [leaf("reported.battery", "lt", 50), leaf("device_type", "eq", "sensor")]}
    ) == ["low"]


def test_membership_is_one_query(django_assert_num_queries):
    group = make_group(
        "mixed",
        filters={
            "all": [
                leaf("reported.battery", "lt", 20),
                leaf("firmware_version", "lt", "2.0"),
                leaf("metadata.site", "in", ["a", "b"]),
                leaf("group", "eq", "north"),
                leaf("online", "eq", False),
            ]
        },
    )
    make_group("north")
    with django_assert_num_queries(1):
        assert list(group.members()) == []


def test_static_group_members_are_its_assigned_devices():
    group = make_group("north")
    make_device("in", group=group)
    make_device("out")
    assert [d.device_id for d in group.members()] == ["in"]
    assert list(Device.objects.in_group(group).values_list("device_id", flat=True)) == ["in"]


# -- bad filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "filters: a condition must be an object, not a list"),
        (
            {"all": [leaf("device_type", "eq", "x"), leaf("colour", "eq", "red")]},
            "filters.all[1].field: unknown field 'colour'",
        ),
        (
            {"all": [leaf("device_type", "eq", "x"), {}, leaf("model", "like", "x")]},
            "filters.all[2].op: unknown operator 'like'",
        ),
        (
            leaf("status", "lt", "active"),
            "filters.op: operator 'lt' does not apply to field 'status'",
        ),
        (
            leaf("online", "in", [True]),
            "filters.op: operator 'in' does not apply to field 'online'",
        ),
        (leaf("device_type", "eq", 5), "filters.value: 'device_type' takes a string, not a number"),
        (leaf("status", "eq", "flying"), "filters.value: unknown status 'flying'"),
        (
            leaf("gateway", "in", ["aws", "pigeon"]),
            "filters.value[1]: unknown gateway 'pigeon'; one of mosquitto, aws",
        ),
        (
            leaf("gateway", "prefix", "a"),
            "filters.op: operator 'prefix' does not apply to field 'gateway'",
        ),
        (leaf("online", "eq", "yes"), "filters.value: 'online' takes true or false"),
        (leaf("last_seen", "lt", "yesterday"), "filters.value: 'yesterday' is not a time"),
        (leaf("firmware_version", "gt", "1.x"), "filters.value: '1.x' is not a version"),
        (leaf("firmware_version", "lt", "1..2"), "filters.value: '1..2' is not a version"),
        (leaf("firmware_version", "lt", "v1.2"), "filters.value: 'v1.2' is not a version"),
        (leaf("metadata.floor", "lt", True), "'lt' compares a number or a string, not a boolean"),
        (leaf("metadata.site", "eq", {"a": 1}), "not an object"),
        (leaf("metadata.site", "prefix", 1), "'prefix' takes a string, not a number"),
        (leaf("metadata", "eq", 1), "unknown field 'metadata'"),
        (leaf("metadata..x", "eq", 1), "needs 1 to 8 keys"),
        (leaf("model", "in", []), "'in' takes a list of 1 to 100 values"),
        (leaf("model", "in", ["a", 2]), "filters.value[1]: 'model' takes a string"),
        (leaf("model", "exists", "yes"), "'exists' takes true or false"),
        ({"field": "model", "op": "eq"}, "filters: missing 'value'"),
        ({"field": "model", "value": 1}, "filters: missing 'op'"),
        ({"field": "model", "op": "eq", "value": "x", "case": "i"}, "unknown key(s) 'case'"),
        ({"any": []}, "filters.any: must be a non-empty list of conditions"),
        ({"not": leaf("x", "eq", 1)}, "filters.not.field: unknown field 'x'"),
        ({"all": [], "any": []}, "a 'all' condition has no other keys"),
        ({"device_type": "camera"}, "unknown key(s) 'device_type'"),
        (leaf("group", "eq", "nowhere"), "filters.value: no group is named 'nowhere'"),
    ],
)
def test_bad_filters_are_refused_naming_the_problem(document, message):
    with pytest.raises(FilterError) as refused:
        validate_filters(document)
    assert any(message in m for m in refused.value.messages), refused.value.messages
    group = DeviceGroup(name="bad", filters=document)
    with pytest.raises(ValidationError) as on_save:
        group.full_clean()
    assert any(message in m for m in on_save.value.message_dict["filters"])


def test_a_filter_cannot_name_a_dynamic_group():
    make_group("dyn", filters=leaf("device_type", "eq", "x"))
    with pytest.raises(FilterError, match="group 'dyn' is dynamic"):
        validate_filters(leaf("group", "eq", "dyn"))


def test_too_deep_is_refused():
    document = leaf("model", "eq", "x")
    for _ in range(12):
        document = {"not": document}
    with pytest.raises(FilterError, match="nested deeper than 10 levels"):
        validate_filters(document)


def test_a_static_group_with_members_cannot_become_dynamic():
    group = make_group("north")
    make_device(group=group)
    group.filters = leaf("model", "eq", "x")
    with pytest.raises(ValidationError) as refused:
        group.full_clean()
    assert "assigned members" in str(refused.value.message_dict["filters"])
