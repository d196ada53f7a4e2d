"""last_seen from inbound messages, coalesced to one write per device per 30 s."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices import last_seen
from fleetportal import topics
from fleetportal.bridge import router
from tests.conftest import make_device

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(last_seen, "clock", lambda: now[0])
    last_seen.forget()
    yield now
    last_seen.forget()


def message(device_id: str, at):
    topic = topics.device_topic(device_id, "presence")
    return router.InboundMessage(topic, b"{}", topics.parse(topic), received_at=at)


def test_messages_update_last_seen_at_most_once_per_30_seconds(fake_clock):
    device = make_device("seen-1")
    start = timezone.now()

    router.dispatch(message("seen-1", start))
    fake_clock[0] += 10
    router.dispatch(message("seen-1", start + timedelta(seconds=10)))
    device.refresh_from_db()
    assert device.last_seen == start

    fake_clock[0] += 25
    router.dispatch(message("seen-1", start + timedelta(seconds=35)))
    device.refresh_from_db()
    assert device.last_seen == start + timedelta(seconds=35)
