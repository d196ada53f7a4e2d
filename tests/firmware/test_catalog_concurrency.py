"""Concurrent uploads of one device type: exactly one latest, the highest version, and the
anti-rollback check sees the other upload (a per-device-type lock, not a read-modify-write)."""

import threading

import pytest
from django.db import connection

from firmware import catalog
from firmware.models import FirmwareVersion
from tests.conftest import make_device
from tests.firmware.catalog_helpers import add, firmware_env  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("firmware_env"),
]


def concurrently(*calls):
    """Run each call in its own thread and connection, released together; return outcomes."""
    start = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            start.wait()
            outcomes[index] = call()
        except Exception as exc:  # the test inspects what each thread met
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_uploads_leave_one_latest_the_highest_version():
    make_device(device_type="sensor")
    for round_number in range(5):
        low, high = f"{round_number + 1}.0.0", f"{round_number + 1}.5.0"
        outcomes = concurrently(lambda v=high: add(v), lambda v=low: add(v))
        assert all(isinstance(o, FirmwareVersion) for o in outcomes), outcomes
        latest = FirmwareVersion.objects.filter(device_type="sensor", is_latest=True)
        assert list(latest.values_list("version", flat=True)) == [high]


def test_concurrent_uploads_cannot_both_pass_the_rollback_check():
    make_device(device_type="sensor")
    add("1.0", security_version=1)
    outcomes = concurrently(
        lambda: add("2.0", security_version=5), lambda: add("1.5", security_version=2)
    )
    kinds = sorted(type(o).__name__ for o in outcomes)
    # Either order is legal only if security versions grow in upload order: 2 then 5 both pass;
    # 5 then 2 refuses the 2.
    stored = dict(FirmwareVersion.objects.values_list("version", "security_version"))
    if kinds == ["CatalogRefused", "FirmwareVersion"]:
        assert stored == {"1.0": 1, "2.0": 5}
    else:
        assert kinds == ["FirmwareVersion", "FirmwareVersion"]
        assert stored == {"1.0": 1, "2.0": 5, "1.5": 2}
    assert FirmwareVersion.objects.get(is_latest=True).version == "2.0"


def test_the_same_version_uploaded_twice_at_once_is_stored_once():
    make_device(device_type="sensor")
    outcomes = concurrently(lambda: add("3.0"), lambda: add("3.0"))
    assert sorted(type(o).__name__ for o in outcomes) == ["CatalogRefused", "FirmwareVersion"]
    refusal = next(o for o in outcomes if isinstance(o, catalog.CatalogRefused))
    assert refusal.code == "duplicate"
    assert FirmwareVersion.objects.count() == 1
