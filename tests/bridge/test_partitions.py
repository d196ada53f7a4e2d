"""The partition function: Python and PostgreSQL must agree, or a device's messages and its
replies would be handled by different bridges."""

import pytest
from django.db import connection

from devices.models import Device
from fleetportal import topics
from fleetportal.bridge.partitions import Partition, PartitionOf, partition_of, partition_sql
from tests.conftest import make_device

IDS = [f"dev-{n:05d}" for n in range(2000)] + ["a", "Ünïcode-ψ", "x" * 128, "thermo.7_b-2"]


@pytest.mark.django_db
@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 64])
def test_python_and_sql_give_every_device_the_same_partition(partitions):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {partition_sql('id', partitions)} FROM unnest(%s::text[]) AS t(id)",  # noqa: S608
            [IDS],
        )
        in_sql = dict(cursor.fetchall())
    assert in_sql == {device_id: partition_of(device_id, partitions) for device_id in IDS}


@pytest.mark.django_db
def test_the_django_expression_selects_the_same_devices():
    for n in range(40):
        make_device(f"expr-{n}")
    in_one = Device.objects.alias(p=PartitionOf("device_id", 3)).filter(p=1)
    assert set(in_one.values_list("device_id", flat=True)) == {
        f"expr-{n}" for n in range(40) if partition_of(f"expr-{n}", 3) == 1
    }


def test_devices_spread_over_every_partition():
    counts = [0] * 4
    for device_id in IDS:
        counts[partition_of(device_id, 4)] += 1
    assert min(counts) > len(IDS) / 4 * 0.8


def test_messages_naming_no_device_belong_to_partition_zero():
    assert [partition_of("", n) for n in (1, 2, 5)] == [0, 0, 0]


def test_one_partition_keeps_the_single_bridge_client_ids():
    assert Partition().runner_client_id == "fleetportal.bridge"
    assert Partition().publisher_client_id == "fleetportal.outbox"
    assert Partition(1, 4).runner_client_id == "fleetportal.bridge.p1"
    assert Partition(1, 4).publisher_client_id == "fleetportal.outbox.p1"


@pytest.mark.parametrize("index, count", [(2, 2), (-1, 2), (0, 0)])
def test_a_partition_outside_the_layout_is_refused(index, count):
    with pytest.raises(ValueError):
        Partition(index, count)


def test_partition_sql_refuses_anything_but_a_positive_integer():
    with pytest.raises(ValueError):
        partition_sql("device_id", "2; DROP TABLE x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "topic_filter, narrowed",
    [
        ("$aws/things/+/shadow/update", "$aws/things/dev-1/shadow/update"),
        ("$aws/things/+/shadow/name/+/get", "$aws/things/dev-1/shadow/name/+/get"),
        ("devices/+/certificates/rotate", "devices/dev-1/certificates/rotate"),
        ("$aws/provisioning-templates/+/provision/json", None),
        ("$aws/certificates/create-from-csr/json", None),
    ],
)
def test_filters_are_narrowed_to_one_device_only_where_they_name_one(topic_filter, narrowed):
    assert topics.filter_for_device(topic_filter, "dev-1") == narrowed
    if narrowed:
        assert topics.parse(narrowed.replace("/+/", "/main/")).device_id == "dev-1"
