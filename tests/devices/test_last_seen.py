"""last_seen from inbound messages, coalesced to one write per device per 30 s of the messages'
receive times."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from devices import last_seen
from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal import topics
from fleetportal.bridge import router
from tests.conftest import make_device
from tests.sql import statements

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def nothing_remembered():
    last_seen.forget()
    yield
    last_seen.forget()


def message(device_id: str, at):
    topic = topics.device_topic(device_id, "presence")
    return router.InboundMessage(topic, b"{}", topics.parse(topic), received_at=at)


def test_messages_update_last_seen_at_most_once_per_30_seconds():
    device = make_device("seen-1")
    start = timezone.now()

    router.dispatch(message("seen-1", start))
    router.dispatch(message("seen-1", start + timedelta(seconds=10)))
    device.refresh_from_db()
    assert device.last_seen == start

    router.dispatch(message("seen-1", start + timedelta(seconds=35)))
    device.refresh_from_db()
    assert device.last_seen == start + timedelta(seconds=35)


def test_a_backlog_handled_in_a_burst_still_records_its_later_messages():
    """A bridge catching up handles minutes of messages in a moment: the window is counted on
    when they were received, so the device's last_seen follows them (the rollout health check
    compares it with when the device reported its new version)."""
    device = make_device("seen-backlog")
    start = timezone.now() - timedelta(minutes=5)
    for seconds in range(0, 300, 5):  # five minutes of messages, every 5 s, handled at once
        run_batch([message("seen-backlog", start + timedelta(seconds=seconds))])
    device.refresh_from_db()
    assert device.last_seen >= start + timedelta(seconds=270)


def test_a_message_received_before_the_time_written_does_not_move_last_seen_back():
    device = make_device("seen-late")
    start = timezone.now()
    router.dispatch(message("seen-late", start))
    router.dispatch(message("seen-late", start - timedelta(minutes=2)))  # redelivered, old
    device.refresh_from_db()
    assert device.last_seen == start


def run_batch(messages, *, fail: bool = False) -> None:
    """As the bridge runs a batch: hooks around the dispatches, one transaction."""

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            router.begin_batch(messages)
            try:
                for m in messages:
                    router.dispatch(m)
                router.flush_batch()
                if fail:
                    raise Rollback
            finally:
                router.end_batch()
    except Rollback:
        pass


def test_a_batch_writes_last_seen_of_all_its_devices_in_one_statement():
    devices = [make_device(f"seen-b{n}") for n in range(20)]
    make_device("seen-gone", status=DeviceStatus.DECOMMISSIONED)
    start = timezone.now()
    messages = [
        message(d.device_id, start + timedelta(seconds=k)) for k in range(3) for d in devices
    ] + [message("seen-gone", start)]

    with statements() as sent:
        run_batch(messages)

    assert len([sql for sql in sent if sql.startswith("UPDATE")]) == 1
    seen = dict(
        Device.objects.filter(device_id__startswith="seen-").values_list("device_id", "last_seen")
    )
    assert seen == {
        **{d.device_id: start + timedelta(seconds=2) for d in devices},
        "seen-gone": None,
    }
    # Remembered after the commit: the next messages inside the window write nothing.
    run_batch([message(d.device_id, start + timedelta(seconds=10)) for d in devices])
    assert Device.objects.get(device_id="seen-b0").last_seen == start + timedelta(seconds=2)


def test_a_rolled_back_batch_is_not_remembered():
    make_device("seen-rb")
    start = timezone.now()
    run_batch([message("seen-rb", start)], fail=True)
    assert Device.objects.get(device_id="seen-rb").last_seen is None

    run_batch([message("seen-rb", start + timedelta(seconds=1))])
    assert Device.objects.get(device_id="seen-rb").last_seen == start + timedelta(seconds=1)


def test_an_address_is_written_when_it_changes_not_on_every_request():
    make_device("seen-ip")
    start = timezone.now()
    last_seen.seen("seen-ip", start, "10.0.0.1")
    last_seen.seen("seen-ip", start + timedelta(seconds=5), "10.0.0.1")
    device = Device.objects.get(device_id="seen-ip")
    assert (device.last_seen, device.last_ip_address) == (start, "10.0.0.1")

    last_seen.seen("seen-ip", start + timedelta(seconds=10), "10.0.0.2")  # it moved
    device.refresh_from_db()
    assert (device.last_seen, device.last_ip_address) == (start + timedelta(seconds=10), "10.0.0.2")


def test_a_batch_keeps_the_address_it_learned_and_the_latest_time():
    make_device("seen-bip")
    start = timezone.now()
    connect = message("seen-bip", start)
    later = message("seen-bip", start + timedelta(seconds=1))

    with transaction.atomic():
        router.begin_batch([connect, later])
        try:
            last_seen.seen("seen-bip", start, "10.0.0.9")  # as the connection log does
            router.dispatch(later)
            router.flush_batch()
        finally:
            router.end_batch()

    device = Device.objects.get(device_id="seen-bip")
    assert device.last_ip_address == "10.0.0.9"
    assert device.last_seen == start + timedelta(seconds=1)


def test_a_connection_logged_with_a_new_address_and_an_older_time_keeps_the_newer_time():
    device = make_device("seen-addr")
    start = timezone.now()
    router.dispatch(message("seen-addr", start))
    last_seen.seen("seen-addr", start - timedelta(seconds=40), "10.0.0.7")  # logged late

    device.refresh_from_db()
    assert (device.last_seen, device.last_ip_address) == (start, "10.0.0.7")


def test_a_late_batch_does_not_move_last_seen_back():
    device = make_device("seen-behind")
    now = timezone.now()
    Device.objects.filter(pk=device.pk).update(last_seen=now)  # the HTTP device API, just now
    run_batch([message("seen-behind", now - timedelta(minutes=3))])  # a bridge behind

    device.refresh_from_db()
    assert device.last_seen == now
