"""New devices and partitioned bridges: no device may publish before its topics have a subscriber.

A partitioned bridge subscribes to the explicit topics of the devices it owns (§3), so a device
registered a moment ago has no subscriber yet, and Mosquitto silently drops what nobody is
subscribed to — after PUBACKing the device. This module closes that race:

- registration calls `announce_new_devices()` after its commit: a NOTIFY that wakes each
  partition's subscriber (fleetportal.bridge.subscriber), which subscribes the new devices, waits
  for the SUBACKs and then records in BridgePartition that it covers every device committed
  before `covered_at` (taken before its device query);
- credential issuance calls `wait_until_covered()` after its commit (and the claim flow before it
  releases the certificate's hold): it waits, bounded, until the partitions owning those devices
  have covered_at later than the moment the device was already committed. Without a certificate
  a device cannot connect, so it cannot publish before it is covered.

fleetportal does not import the devices app: devices tells the bridge which devices to
subscribe with `set_device_source` in its AppConfig.ready(). A callable that returns a queryset
keeps the table, the model and "which devices count" (not decommissioned) in devices, while
fleetportal applies the partition function to it (partitions.PartitionOf) — a raw SQL query on a
table name would tie fleetportal to devices' schema.
"""

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from fleetportal.bridge.partitions import Partition, PartitionOf, partition_of
from fleetportal.models import BridgePartition

log = logging.getLogger(__name__)

DEVICES_CHANNEL = "fleetportal_devices"
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.02
# A partition whose bridge has not recorded anything for this long is not running: waiting
# for it cannot help (its subscriber is what would cover the device), so it is skipped, loudly.
STALE_AFTER = timedelta(seconds=90)

_device_source: Callable[[], QuerySet] | None = None


def set_device_source(source: Callable[[], QuerySet]) -> None:
    """Tell the bridge which devices need subscriptions: a queryset with a `device_id` field."""
    global _device_source
    _device_source = source


def devices_in(partition: Partition) -> set[str]:
    """The device ids `partition` owns, as the device source sees them now."""
    if _device_source is None:
        raise RuntimeError("No device source: the devices app registers one in its ready().")
    rows = (
        _device_source()
        .alias(bridge_partition=PartitionOf("device_id", partition.count))
        .filter(bridge_partition=partition.index)
        .values_list("device_id", flat=True)
    )
    return set(rows)


def announce_new_devices() -> None:
    """Wake the partitioned bridges after the registration commits (registration calls this)."""
    transaction.on_commit(_notify)


def _notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [DEVICES_CHANNEL])


def database_now() -> datetime:
    """The database's clock: covered_at and the waiter's start are compared on one clock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def record(partition: Partition, covered_at: datetime, devices: int) -> None:
    """The subscriber of `partition` has SUBACKs for every device committed before covered_at."""
    BridgePartition.objects.update_or_create(
        partition=partition.index,
        defaults={"partitions": partition.count, "covered_at": covered_at, "devices": devices},
    )


def forget_other_layouts(partition: Partition) -> None:
    """At a bridge's start: rows of another partition count describe bridges that no longer run.

    With a single bridge (N = 1) every row goes, and issuance stops waiting.
    """
    if partition.partitioned:
        BridgePartition.objects.exclude(partitions=partition.count).delete()
    else:
        BridgePartition.objects.all().delete()


def wait_until_covered_after_commit(device_ids: Iterable[str], *, what: str) -> None:
    """Credential issuance: once this transaction commits, wait until the devices are covered."""
    ids = sorted(set(device_ids))
    if ids:
        transaction.on_commit(lambda: _wait_quietly(ids, what))


def _wait_quietly(device_ids: list[str], what: str) -> None:
    # An on_commit callback that raises stops the ones after it (the claim flow's release of
    # the certificate hold): a database hiccup here must only cost the wait.
    try:
        wait_until_covered(device_ids, what=what)
    except DatabaseError as exc:
        log.warning("bridge: could not check the subscriptions of %s (%s)", what, exc)


def wait_until_covered(
    device_ids: Iterable[str], *, what: str = "devices", timeout: float = WAIT_SECONDS
) -> bool:
    """Wait until the partitions owning `device_ids` subscribed them; True if they did in time.

    Call it after the devices were committed. One query when the bridge is not partitioned (no
    rows). On timeout, log and return False: the certificate is issued all the same, and the
    device's first messages may be dropped until its bridge catches up (its 30 s refresh).
    """
    ids = list(device_ids)
    if not BridgePartition.objects.filter(partitions__gt=1).exists():
        return True  # one bridge: it holds wildcard subscriptions
    started = database_now()
    deadline = time.monotonic() + timeout
    asked = False
    while True:
        waiting, absent = _uncovered(ids, started)
        if absent and not asked:
            log.warning("bridge: partitions %s are not running; not waiting for them", absent)
        if not waiting:
            return True
        if not asked:
            # The registration's NOTIFY may have been served before `started`: ask for a
            # refresh that surely begins after it (one NOTIFY per wait, not per device).
            _notify()
            asked = True
        if time.monotonic() >= deadline:
            log.warning(
                "bridge: partitions %s did not subscribe %s within %.0f s; their first messages "
                "may be lost",
                waiting,
                what,
                timeout,
            )
            return False
        time.sleep(POLL_SECONDS)


def _uncovered(device_ids: list[str], started: datetime) -> tuple[list[int], list[int]]:
    """(partitions that still have to cover these devices, partitions that are not running)."""
    rows = [row for row in BridgePartition.objects.all() if row.partitions > 1]
    if not rows:
        return [], []
    count = max(rows, key=lambda row: row.covered_at).partitions
    live = {
        row.partition: row
        for row in rows
        if row.partitions == count and row.covered_at > started - STALE_AFTER
    }
    needed = {partition_of(device_id, count) for device_id in device_ids}
    waiting = sorted(k for k in needed & set(live) if live[k].covered_at < started)
    return waiting, sorted(needed - set(live))
