"""Registering and editing devices through the service layer: what is written, what refused."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from devices import services
from devices.choices import DeviceStatus as S
from devices.choices import EventType
from devices.exceptions import DeviceDecommissioned, DeviceIdTaken
from devices.models import Device, DeviceEvent
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db


def register(**fields):
    fields.setdefault("device_type", "sensor")
    return services.register_device(fields, actor="ada")


def assert_nothing_written():
    assert not Device.objects.exists()
    assert not DeviceEvent.objects.exists()


# --- register_device --------------------------------------------------------------------------


def test_registered_device_starts_registered_with_its_registration_event():
    device = register(device_id="thermo-1", serial_number="SN-1")

    stored = Device.objects.get(device_id="thermo-1")
    assert stored.status == S.REGISTERED
    assert stored.serial_number == "SN-1"
    (event,) = device.events.all()
    assert (event.event_type, event.actor) == (EventType.REGISTERED, "ada")


def test_registration_ignores_a_requested_status():
    device = register(device_id="thermo-2", status=S.ACTIVE)
    assert Device.objects.get(pk=device.pk).status == S.REGISTERED


@pytest.mark.parametrize(
    "device_id",
    ["a/b", "a+b", "a#b", "a b", "x" * 129, "", "ünïcode"],
    ids=["slash", "plus", "hash", "space", "129-chars", "empty", "non-ascii"],
)
def test_registration_refuses_a_device_id_that_breaks_topics(device_id):
    with pytest.raises(ValidationError) as refused:
        register(device_id=device_id)
    assert "device_id" in refused.value.message_dict
    assert_nothing_written()


def test_registration_accepts_the_longest_allowed_device_id():
    device_id = "a:B_9-" * 21 + "xy"
    assert len(device_id) == 128
    assert register(device_id=device_id).device_id == device_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", ["not", "an", "object"]),
        ("location", "Berlin"),
        ("last_ip_address", "999.1.1.1"),
        ("device_type", ""),
    ],
)
def test_registration_refuses_bad_fields_and_names_them(field, value):
    with pytest.raises(ValidationError) as refused:
        register(device_id="thermo-3", **{field: value})
    assert field in refused.value.message_dict
    assert_nothing_written()


def test_registration_refuses_a_dynamic_group():
    group = make_group("all-cameras", filters={"x": 1})
    with pytest.raises(ValidationError) as refused:
        register(device_id="cam-1", group=group)
    assert "group" in refused.value.message_dict
    assert_nothing_written()


def test_duplicate_device_id_is_refused_and_nothing_is_written():
    register(device_id="thermo-4")
    with pytest.raises(ValidationError) as refused:
        register(device_id="thermo-4", device_name="second")
    assert "device_id" in refused.value.message_dict
    assert Device.objects.count() == 1
    assert DeviceEvent.objects.count() == 1


def test_device_id_of_a_decommissioned_device_stays_taken():
    make_device("thermo-5", status=S.DECOMMISSIONED)
    with pytest.raises(ValidationError) as refused:
        register(device_id="thermo-5")
    assert "device_id" in refused.value.message_dict
    assert Device.objects.filter(device_id="thermo-5").count() == 1


# Real commits, so the threads see each other. Each transactional test ends with a flush, which
# also removes the roles from the data migration; serialized_rollback reloads them first.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_racing_registrations_of_one_device_id_create_one_device():
    barrier = threading.Barrier(2)
    errors = []

    def attempt():
        try:
            barrier.wait()
            register(device_id="thermo-race")
        except (DeviceIdTaken, ValidationError) as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Either the second sees the first in full_clean, or the unique index refuses it.
    assert len(errors) == 1
    assert Device.objects.filter(device_id="thermo-race").count() == 1
    assert DeviceEvent.objects.count() == 1


def test_device_id_taken_error_names_the_field_and_says_ids_are_never_reused():
    error = DeviceIdTaken("thermo-6")
    assert error.field == "device_id"
    assert "never reused" in error.message


# --- register_devices -------------------------------------------------------------------------


def register_many(*device_ids: str, **fields) -> list:
    fields.setdefault("device_type", "sensor")
    rows = [{"device_id": device_id, **fields} for device_id in device_ids]
    return services.register_devices(rows, actor="ada")


def test_batch_registers_each_valid_row_with_its_event_and_refuses_the_others():
    results = services.register_devices(
        [
            {"device_id": "thermo-1", "device_type": "sensor"},
            {"device_id": "a/b", "device_type": "sensor"},
            {"device_id": "thermo-2", "device_type": ""},
            {"device_id": "thermo-3", "device_type": "sensor", "status": S.ACTIVE},
        ],
        actor="ada",
    )

    assert [type(r) for r in results] == [Device, ValidationError, ValidationError, Device]
    assert list(results[1].message_dict) == ["device_id"]
    assert list(results[2].message_dict) == ["device_type"]
    stored = dict(Device.objects.values_list("device_id", "status"))
    assert stored == {"thermo-1": S.REGISTERED, "thermo-3": S.REGISTERED}
    events = DeviceEvent.objects.values_list("device__device_id", "event_type", "actor")
    assert sorted(events) == [
        ("thermo-1", EventType.REGISTERED, "ada"),
        ("thermo-3", EventType.REGISTERED, "ada"),
    ]


def test_batch_refuses_device_ids_taken_before_or_earlier_in_the_batch():
    make_device("thermo-old", status=S.DECOMMISSIONED)

    results = register_many("thermo-old", "thermo-new", "thermo-new", "thermo-other")

    assert [type(r) for r in results] == [ValidationError, Device, ValidationError, Device]
    for refused in (results[0], results[2]):
        assert refused.message_dict == {"device_id": ["Device with this Device ID already exists."]}
    assert Device.objects.filter(device_id="thermo-new").count() == 1
    assert Device.objects.count() == DeviceEvent.objects.count() == 3


def test_batch_reports_a_taken_id_alongside_the_row_s_other_errors():
    make_device("thermo-1")
    (result,) = register_many("thermo-1", device_type="")
    assert sorted(result.message_dict) == ["device_id", "device_type"]


def test_batch_that_loses_a_race_refuses_only_the_raced_row(monkeypatch):
    make_device("thermo-raced")
    # As if the other registration committed between the check and the insert.
    monkeypatch.setattr(services, "_refuse_taken_ids", lambda devices, errors: None)

    results = register_many("thermo-1", "thermo-raced", "thermo-2")

    assert isinstance(results[1], DeviceIdTaken)
    assert [r.device_id for r in (results[0], results[2])] == ["thermo-1", "thermo-2"]
    assert Device.objects.count() == DeviceEvent.objects.count() == 3


def test_batch_writes_nothing_when_its_transaction_fails(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("database gone")

    # The events are written after the devices, in the same transaction.
    monkeypatch.setattr(DeviceEvent.objects, "bulk_create", fail)
    with pytest.raises(RuntimeError):
        register_many("thermo-1", "thermo-2")
    assert_nothing_written()


def test_batch_of_fifty_takes_as_many_queries_as_a_batch_of_five(
    django_assert_num_queries, django_assert_max_num_queries
):
    group = make_group("plant-1")
    # Default gateways of the types, groups, taken ids, savepoint, devices, events, release.
    with django_assert_max_num_queries(7) as queries:
        register_many(*(f"few-{n}" for n in range(5)), group=group)
    with django_assert_num_queries(len(queries)):
        results = register_many(*(f"many-{n}" for n in range(50)), group=group)
    assert all(isinstance(r, Device) for r in results)


# --- update_device ----------------------------------------------------------------------------


def test_update_records_each_changed_field_with_old_and_new_value():
    device = make_device(firmware_version="1.0.0", device_name="hall")

    services.update_device(
        device, {"firmware_version": "1.1.0", "device_name": "hall"}, actor="ada"
    )

    assert Device.objects.get(pk=device.pk).firmware_version == "1.1.0"
    (event,) = device.events.filter(event_type=EventType.UPDATED)
    assert event.actor == "ada"
    assert event.event_data == {"changes": {"firmware_version": ["1.0.0", "1.1.0"]}}


def test_update_records_a_group_change_by_name():
    group = make_group("building-b")
    device = make_device()

    services.update_device(device, {"group": group}, actor="ada")

    assert Device.objects.get(pk=device.pk).group == group
    (event,) = device.events.filter(event_type=EventType.UPDATED)
    assert event.event_data == {"changes": {"group": [None, "building-b"]}}


def test_update_that_changes_nothing_writes_no_event():
    device = make_device(device_name="hall")
    services.update_device(device, {"device_name": "hall"}, actor="ada")
    assert not device.events.filter(event_type=EventType.UPDATED).exists()


@pytest.mark.parametrize("field", ["device_id", "status", "created_at", "last_seen", "id"])
def test_update_refuses_fields_that_are_not_editable(field):
    device = make_device()
    before = Device.objects.get(pk=device.pk)

    with pytest.raises(ValidationError) as refused:
        services.update_device(device, {field: "x", "device_name": "new"}, actor="ada")

    assert field in refused.value.message_dict
    after = Device.objects.get(pk=device.pk)
    assert (after.device_name, after.updated_at) == (before.device_name, before.updated_at)
    assert not device.events.filter(event_type=EventType.UPDATED).exists()


def test_update_of_a_decommissioned_device_is_refused():
    device = make_device(status=S.DECOMMISSIONED, device_name="old")
    with pytest.raises(DeviceDecommissioned, match="decommissioned"):
        services.update_device(device, {"device_name": "new"}, actor="ada")
    assert Device.objects.get(pk=device.pk).device_name == "old"


def test_update_refuses_moving_a_device_into_a_dynamic_group():
    static = make_group("static-a")
    dynamic = make_group("dynamic-b", filters={"x": 1})
    device = make_device(group=static)

    with pytest.raises(ValidationError) as refused:
        services.update_device(device, {"group": dynamic, "device_name": "n"}, actor="ada")

    assert "group" in refused.value.message_dict
    stored = Device.objects.get(pk=device.pk)
    assert (stored.group, stored.device_name) == (static, "")
    assert not device.events.filter(event_type=EventType.UPDATED).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("last_ip_address", "10.0.0.300"), ("metadata", [1, 2]), ("location", 5)],
)
def test_update_refuses_bad_values_and_keeps_the_old_ones(field, value):
    device = make_device(device_name="hall")

    with pytest.raises(ValidationError) as refused:
        services.update_device(device, {field: value, "device_name": "new"}, actor="ada")

    assert field in refused.value.message_dict
    assert Device.objects.get(pk=device.pk).device_name == "hall"
    assert not device.events.filter(event_type=EventType.UPDATED).exists()


def test_update_accepts_an_ipv6_address_and_json_objects():
    device = make_device()
    services.update_device(
        device,
        {"last_ip_address": "2001:db8::1", "metadata": {"rack": 4}, "location": {"lat": 1.5}},
        actor="ada",
    )
    stored = Device.objects.get(pk=device.pk)
    assert (stored.last_ip_address, stored.metadata, stored.location) == (
        "2001:db8::1",
        {"rack": 4},
        {"lat": 1.5},
    )
