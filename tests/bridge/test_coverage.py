"""How credential issuance decides whether to wait for partitioned bridges (BridgePartition)."""

import time
from datetime import timedelta

import pytest

from fleetportal.bridge import coverage
from fleetportal.bridge.partitions import Partition, partition_of
from fleetportal.models import BridgePartition

pytestmark = pytest.mark.django_db


def device_in(partition: int, partitions: int = 2) -> str:
    return next(
        f"cov-{n}" for n in range(1000) if partition_of(f"cov-{n}", partitions) == partition
    )


def covered(partition: int, ago: timedelta, partitions: int = 2) -> None:
    coverage.record(Partition(partition, partitions), coverage.database_now() - ago, devices=1)


def test_one_bridge_never_waits(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert coverage.wait_until_covered([device_in(1)], timeout=0)


def test_waits_for_the_partition_that_owns_the_device_only():
    covered(0, ago=timedelta(seconds=-60))  # partition 0 refreshed after the wait starts
    covered(1, ago=timedelta(seconds=5))  # partition 1 is running, but behind
    assert coverage.wait_until_covered([device_in(0)], timeout=0.5)
    started = time.monotonic()
    assert not coverage.wait_until_covered([device_in(1)], timeout=0.3)
    assert time.monotonic() - started >= 0.3


def test_a_partition_silent_for_long_is_not_waited_for():
    covered(0, ago=timedelta(seconds=-60))
    covered(1, ago=coverage.STALE_AFTER + timedelta(seconds=5))
    assert coverage.wait_until_covered([device_in(1)], timeout=5)


def test_a_bridge_restarted_with_one_partition_stops_the_waiting():
    covered(0, ago=timedelta(seconds=5))
    covered(1, ago=timedelta(seconds=5))
    coverage.forget_other_layouts(Partition())
    assert not BridgePartition.objects.exists()
    assert coverage.wait_until_covered([device_in(0), device_in(1)], timeout=0)
