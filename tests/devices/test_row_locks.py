"""A device row locked to change it (a transition, an edit, a rotation) must not hold up rows
that merely reference the device: their foreign-key check takes FOR KEY SHARE on the device at
commit, which FOR UPDATE blocks and FOR NO KEY UPDATE does not. With FOR UPDATE, a rollout's
commit (thousands of rows naming devices) and a bridge batch locking two devices deadlocked —
the simulated fleet's rehearsal found it (tests/simulator/test_rehearsal.py)."""

import threading

import pytest
from django.db import connection, transaction

from devices import credentials, services
from devices.choices import DeviceStatus
from devices.models import DeviceEvent
from tests.conftest import make_device
from tests.devices.credential_helpers import credentialed, csr_pem, pki_ready  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def holding_the_lock(change) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """Run change() in a transaction of another connection and keep it open until released."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                change()
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(10), "the change did not happen"
    return locked, release, thread


def referencing(device) -> tuple[threading.Event, threading.Thread]:
    """Commit a new row naming the device in a third connection; the event is set once done."""
    done = threading.Event()

    def insert():
        try:
            with transaction.atomic():
                DeviceEvent.objects.create(device=device, event_type="noted", actor="test")
            done.set()
        finally:
            connection.close()

    thread = threading.Thread(target=insert)
    thread.start()
    return done, thread


def commits_beside(change, device) -> bool:
    """While change() holds its transaction open, does a row naming the device commit?"""
    _, release, holder = holding_the_lock(change)
    done, inserter = referencing(device)
    try:
        return done.wait(2.0)
    finally:
        release.set()
        holder.join(15)
        inserter.join(15)


CHANGES = {
    "transition": lambda d: services.transition_device(d, DeviceStatus.MAINTENANCE, actor="t"),
    "edit": lambda d: services.update_device(d, {"model": "X2"}, actor="t"),
    "several": lambda d: services.transition_devices([d], DeviceStatus.MAINTENANCE, actor="t"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_device_being_changed_does_not_block_rows_that_name_it(change):
    device = make_device(status=DeviceStatus.ACTIVE)
    assert commits_beside(lambda: CHANGES[change](device), device)


def test_a_rotation_in_progress_does_not_block_rows_that_name_it(pki_ready):  # noqa: F811
    device = credentialed(status=DeviceStatus.ACTIVE).device
    csr = csr_pem(device.device_id)
    assert commits_beside(lambda: credentials.request_rotation(device, csr, actor="t"), device)
