"""The router: a request kind has one handler, a reported kind reaches every subscriber."""

import pytest
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal import topics
from fleetportal.bridge import router
from shadows import handlers as shadow_handlers
from tests.conftest import make_device
from tests.mqtt.clients import make_identity

TEST_KIND = "device:test/fan-out"


def message(topic: str) -> router.InboundMessage:
    """A message of TEST_KIND naming no device, so the device hooks (database writes) stay out."""
    return router.InboundMessage(topic, b"{}", topics.Route(TEST_KIND), timezone.now())


class Recorder:
    def __init__(self):
        self.topics: list[str] = []

    def __call__(self, message: router.InboundMessage) -> None:
        self.topics.append(message.topic)


@pytest.fixture
def clean_kind():
    yield TEST_KIND
    router.unregister(TEST_KIND)


def test_every_subscriber_of_a_reported_kind_gets_each_message_in_order(clean_kind):
    calls = []
    router.subscribe(clean_kind, lambda m: calls.append("first"), "devices/+/test/fan-out")
    router.subscribe(clean_kind, lambda m: calls.append("second"), "devices/+/test/fan-out")

    assert router.dispatch(message("devices/d-1/test/fan-out"))

    assert calls == ["first", "second"]
    assert "devices/+/test/fan-out" in router.subscriptions()


def test_subscribing_the_same_handler_twice_calls_it_once(clean_kind):
    recorder = Recorder()
    router.subscribe(clean_kind, recorder, "devices/+/test/fan-out")
    router.subscribe(clean_kind, recorder, "devices/+/test/fan-out")

    router.dispatch(message("devices/d-1/test/fan-out"))

    assert recorder.topics == ["devices/d-1/test/fan-out"]


def test_an_unsubscribed_handler_is_no_longer_called_and_its_filter_goes(clean_kind):
    kept, dropped = Recorder(), Recorder()
    router.subscribe(clean_kind, kept, "devices/+/test/fan-out")
    router.subscribe(clean_kind, dropped, "devices/+/test/fan-out/extra")

    router.unsubscribe(clean_kind, dropped)
    router.dispatch(message("devices/d-1/test/fan-out"))

    assert (len(kept.topics), dropped.topics) == (1, [])
    assert "devices/+/test/fan-out/extra" not in router.subscriptions()


def test_a_kind_is_isolated_only_while_every_subscriber_is(clean_kind):
    route = topics.Route(TEST_KIND)
    router.subscribe(clean_kind, Recorder(), "devices/+/test/fan-out", isolated=True)
    assert router.is_isolated(route)

    router.subscribe(clean_kind, Recorder(), "devices/+/test/fan-out")

    assert not router.is_isolated(route)


def test_a_second_handler_for_a_request_kind_is_refused_naming_both():
    kind = topics.shadow_kind("update")

    def firmware_shadow_update(message):
        pass

    with pytest.raises(router.RouteConflict) as refused:
        router.register(kind, firmware_shadow_update, *topics.shadow_filters("update"))

    assert "firmware_shadow_update" in str(refused.value)
    assert "shadows.handlers" in str(refused.value) and "shadow_update" in str(refused.value)
    # The shadow service still serves updates.
    assert router._routes[kind][0].handler.__module__ == shadow_handlers.__name__


def test_registering_the_same_request_handler_again_only_updates_it(clean_kind):
    """ready() running twice is no conflict; the later filters hold."""
    recorder = Recorder()
    router.register(clean_kind, recorder, "devices/+/test/old")
    router.register(clean_kind, recorder, "devices/+/test/new")

    assert router.dispatch(message("devices/d-1/test/new"))
    assert recorder.topics == ["devices/d-1/test/new"]
    assert "devices/+/test/old" not in router.subscriptions()


def test_a_request_kind_cannot_be_subscribed_to_nor_a_reported_kind_registered():
    with pytest.raises(router.RouteConflict, match="request kind"):
        router.subscribe(topics.shadow_kind("get"), Recorder(), "$aws/things/+/shadow/get")
    with pytest.raises(router.RouteConflict, match="subscribe"):
        router.register("device:presence", Recorder(), "devices/+/presence")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_app_hears_telemetry_over_the_real_bridge_beside_the_devices_app(
    broker, device_client, request
):
    """A later app (monitoring) subscribes to telemetry; the devices app still records the sign
    of life from the same message."""
    make_device("fan-1", status=DeviceStatus.ACTIVE)
    heard = Recorder()
    router.subscribe("device:telemetry", heard, topics.device_filter("telemetry"))
    request.addfinalizer(lambda: router.unsubscribe("device:telemetry", heard))
    bridge = request.getfixturevalue("bridge")  # started after the subscription

    device_client(make_identity(broker, "fan-1")).publish("devices/fan-1/telemetry", b"{}")

    assert bridge.wait_until(lambda: heard.topics == ["devices/fan-1/telemetry"], timeout=10)
    assert bridge.wait_until(
        lambda: Device.objects.get(device_id="fan-1").last_seen is not None, timeout=10
    )
