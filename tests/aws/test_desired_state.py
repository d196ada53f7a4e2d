"""Desired state of devices on AWS IoT Core: queued with the change, delivered through
UpdateThingShadow in order, the portal's shadow mirroring AWS's document and version."""

import socket
from datetime import timedelta

import orjson
import pytest
from botocore.stub import Stubber
from django.utils import timezone

from aws_gateway import client, shadow_push
from aws_gateway import client as aws_client
from aws_gateway.choices import LinkPart
from aws_gateway.models import LinkStatus, ShadowPush
from fleetportal.models import OutboxMessage
from shadows import services
from shadows.configuration import services as configuration
from shadows.models import Shadow
from tests.aws.helpers import aws_device_with_thing
from tests.conftest import make_device

pytestmark = pytest.mark.django_db


def thing_shadow(thing: str, name: str = "") -> dict:
    named = {"shadowName": name} if name else {}
    answer = client.client("iot-data").get_thing_shadow(thingName=thing, **named)
    return orjson.loads(answer["payload"].read())


def test_a_desired_change_reaches_the_thing_shadow_and_the_versions_agree(aws):
    device = aws_device_with_thing("thermostat-1")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    assert ShadowPush.objects.count() == 1
    assert not OutboxMessage.objects.filter(device_id="thermostat-1").exists()

    assert shadow_push.push_due() == {"pushed": 1}

    on_aws = thing_shadow("thermostat-1")
    row = Shadow.objects.get(device=device, name="")
    assert on_aws["state"]["desired"] == {"target": 21}
    assert row.desired_state == {"target": 21}
    assert row.version == row.gateway_version == on_aws["version"]
    assert not ShadowPush.objects.exists()
    assert LinkStatus.objects.get(part=LinkPart.SHADOWS).healthy


def test_changes_of_one_device_arrive_in_order_on_a_named_shadow(aws):
    device = aws_device_with_thing()
    services.set_desired(device, "lights", {"hall": "on", "porch": "on"}, actor="otto")
    services.set_desired(device, "lights", {"hall": "off", "porch": None}, actor="otto")
    assert shadow_push.push_due() == {"pushed": 2}
    on_aws = thing_shadow(device.device_id, "lights")
    assert on_aws["state"]["desired"] == {"hall": "off"}
    row = Shadow.objects.get(device=device, name="lights")
    assert (row.desired_state, row.version) == ({"hall": "off"}, on_aws["version"])


def test_the_configuration_reaches_the_config_shadow_on_aws(aws):
    device = aws_device_with_thing()
    configuration.set_value("interval", 30, device=device, actor="otto")
    shadow_push.push_due()
    assert thing_shadow(device.device_id, "config")["state"]["desired"] == {"interval": 30}


def test_a_device_on_the_portals_broker_is_answered_over_mqtt_as_before(aws):
    device = make_device("local-1")
    services.set_desired(device, "", {"target": 19}, actor="otto")
    assert not ShadowPush.objects.exists()
    topics = set(OutboxMessage.objects.filter(device_id="local-1").values_list("topic", flat=True))
    assert any(topic.endswith("/update/delta") for topic in topics)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_aws_down_keeps_the_change_queued_and_delivers_it_later(aws, settings):
    device = aws_device_with_thing("thermostat-2")
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{closed_port()}"
    client.forget_clients()
    services.set_desired(device, "", {"target": 22}, actor="otto")

    assert shadow_push.push_due() == {"retry": 1}
    waiting = ShadowPush.objects.get()
    assert waiting.attempts == 1 and waiting.next_attempt_at > timezone.now()
    assert "Connect" in waiting.last_error or "connect" in waiting.last_error
    link = LinkStatus.objects.get(part=LinkPart.SHADOWS)
    assert not link.healthy and link.failures == 1
    before_due = waiting.next_attempt_at - timedelta(milliseconds=1)
    assert shadow_push.push_due(now=before_due) == {}  # not due yet: nothing is tried

    settings.AWS_ENDPOINT_URL = aws.url
    client.forget_clients()
    later = timezone.now() + timedelta(minutes=1)
    assert shadow_push.push_due(now=later) == {"pushed": 1}
    assert thing_shadow("thermostat-2")["state"]["desired"] == {"target": 22}
    assert LinkStatus.objects.get(part=LinkPart.SHADOWS).healthy


def test_a_change_aws_refuses_is_dropped_and_shown_on_the_timeline(aws):
    device = aws_device_with_thing()
    services.set_desired(device, "", {"target": 23}, actor="otto")
    data = client.client("iot-data")
    with Stubber(data) as stub:  # AWS's answer to a document it will never take
        stub.add_client_error(
            "update_thing_shadow",
            service_error_code="InvalidRequestException",
            service_message="Payload contains invalid json",
            http_status_code=400,
        )
        assert shadow_push.push_due() == {"refused": 1}
    assert not ShadowPush.objects.exists()
    event = device.events.get(event_type=shadow_push.REFUSED_EVENT)
    assert "InvalidRequestException" in event.event_data["error"]
    assert not LinkStatus.objects.get(part=LinkPart.SHADOWS).healthy


def test_the_device_page_shows_what_waits_for_aws_and_why(aws, settings, client, fleet_admin):
    from django.urls import reverse

    device = aws_device_with_thing("thermostat-3")
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{closed_port()}"
    aws_client.forget_clients()
    services.set_desired(device, "", {"target": 18}, actor="otto")
    shadow_push.push_due()
    client.force_login(fleet_admin)
    page = client.get(reverse("admin:devices_device_change", args=[device.pk])).content.decode()
    assert "Shadow changes not on AWS yet" in page
    assert "EndpointConnectionError" in page


def test_a_viewer_reads_the_aws_links_in_the_console(aws, client, viewer):
    from django.urls import reverse

    from aws_gateway import status

    status.failed(LinkPart.SHADOWS, "UnrecognizedClientException: The security token is invalid")
    client.force_login(viewer)
    page = client.get(reverse("admin:aws_gateway_linkstatus_changelist"))
    assert page.status_code == 200
    assert "The security token is invalid" in page.content.decode()


def test_the_list_of_changes_waiting_for_aws_shows_them_and_loses_none(aws, client, viewer):
    from django.urls import reverse

    device = aws_device_with_thing("thermostat-9")
    services.set_desired(device, "", {"target": 17}, actor="otto")
    services.set_desired(device, "lights", {"hall": "on"}, actor="otto")
    services.delete(device, "lights", actor="otto")
    client.force_login(viewer)
    page = client.get(reverse("admin:aws_gateway_shadowpush_changelist"))
    assert page.status_code == 200
    assert page.content.decode().count("thermostat-9") >= 3
    assert ShadowPush.objects.count() == 3  # reading the list changes nothing
