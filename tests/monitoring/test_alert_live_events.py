"""Raises, resolutions and acknowledgements reach the fleet summary's live group (real Redis),
once per evaluation whatever the number of alerts."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from fleetportal import live
from monitoring.alerts import services
from monitoring.alerts.evaluation import evaluate
from monitoring.alerts.live_events import FLEET_SUMMARY
from monitoring.models import Alert
from tests.conftest import make_device
from tests.monitoring.alert_helpers import at, make_rule, report_battery


def none(metric, window, now):
    return {}


async def received(layer, channel) -> list[dict]:
    events = []
    while True:
        try:
            events.append(await asyncio.wait_for(layer.receive(channel), 2))
        except TimeoutError:
            return events


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_coalesced_event_per_change_reaches_the_fleet_summary():
    make_rule(for_seconds=0)
    devices = [make_device(f"d-{n}") for n in range(5)]
    for device in devices:
        report_battery(device, 5)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(live.join)(channel, FLEET_SUMMARY)
    try:
        evaluate(at(0), values=none)
        services.acknowledge(Alert.objects.first(), "otto")
        report_battery(devices[0], 90)
        evaluate(at(1), values=none)
        events = async_to_sync(received)(layer, channel)
    finally:
        async_to_sync(live.leave)(channel, FLEET_SUMMARY)
    # Each change is its own send on the background loop: their order is not promised.
    assert sorted(events, key=lambda e: (e["raised"], e["resolved"], e["acknowledged"])) == [
        {"type": "alerts.changed", "raised": 0, "resolved": 0, "acknowledged": 1},
        {"type": "alerts.changed", "raised": 0, "resolved": 1, "acknowledged": 0},
        {"type": "alerts.changed", "raised": 5, "resolved": 0, "acknowledged": 0},
    ]
