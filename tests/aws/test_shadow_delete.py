"""Deleting a shadow of a device on AWS IoT Core: queued with the deletion, DeleteThingShadow on
AWS (classic and named), retried while AWS is away, and a late document from before it never
bringing the shadow back."""

from datetime import timedelta

import orjson
import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from aws_gateway import client, shadow_push
from aws_gateway.models import ShadowPush
from fleetportal.models import OutboxMessage
from shadows import services
from shadows.models import Shadow
from tests.aws.helpers import (
    aws_device_with_thing,
    documents,
    documents_topic,
    drain,
    forward,
    make_queue,
)
from tests.aws.test_desired_state import closed_port, thing_shadow

pytestmark = pytest.mark.django_db


def on_aws(thing: str, name: str = "") -> bool:
    try:
        thing_shadow(thing, name)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return False
    return True


def test_deleting_a_named_shadow_deletes_it_on_aws_and_leaves_the_others(aws):
    device = aws_device_with_thing("thermostat-1")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    services.set_desired(device, "lights", {"hall": "on"}, actor="otto")
    shadow_push.push_due()

    services.delete(device, "lights", actor="otto")
    assert ShadowPush.objects.get().deletion
    assert not OutboxMessage.objects.filter(topic__contains="/delete/").exists()
    assert shadow_push.push_due() == {"pushed": 1}

    assert not on_aws("thermostat-1", "lights")
    assert on_aws("thermostat-1")
    assert not Shadow.objects.get(device=device, name="lights").live
    assert Shadow.objects.get(device=device, name="").live


def test_deleting_the_classic_shadow_deletes_the_thing_shadow(aws):
    device = aws_device_with_thing("thermostat-2")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    shadow_push.push_due()
    services.delete(device, "", actor="otto")
    assert shadow_push.push_due() == {"pushed": 1}
    assert not on_aws("thermostat-2")


def test_a_thing_already_without_the_shadow_counts_as_deleted(aws):
    device = aws_device_with_thing("thermostat-3")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    ShadowPush.objects.all().delete()  # the change never reached AWS: it has no shadow
    services.delete(device, "", actor="otto")
    assert shadow_push.push_due() == {"pushed": 1}
    assert not ShadowPush.objects.exists()


def test_a_deletion_waits_while_aws_is_down_and_is_delivered_later(aws, settings):
    device = aws_device_with_thing("thermostat-4")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    shadow_push.push_due()
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{closed_port()}"
    client.forget_clients()
    services.delete(device, "", actor="otto")

    assert shadow_push.push_due() == {"retry": 1}
    assert ShadowPush.objects.get().attempts == 1

    settings.AWS_ENDPOINT_URL = aws.url
    client.forget_clients()
    assert shadow_push.push_due(now=timezone.now() + timedelta(minutes=1)) == {"pushed": 1}
    assert not on_aws("thermostat-4")


def test_a_document_from_before_the_deletion_arriving_late_does_not_bring_it_back(aws):
    device = aws_device_with_thing("thermostat-5")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    shadow_push.push_due()
    data = client.client("iot-data")
    answer = data.update_thing_shadow(  # the device reports on AWS; its document is on its way
        thingName="thermostat-5", payload=orjson.dumps({"state": {"reported": {"target": 21}}})
    )
    reported = orjson.loads(answer["payload"].read())["version"]
    services.delete(device, "", actor="otto")
    shadow_push.push_due()

    queue = make_queue()
    forward(queue, documents_topic("thermostat-5"), documents(reported, reported={"target": 21}))
    drain(queue)

    row = Shadow.objects.get(device=device, name="")
    assert not row.live and row.reported_state == {}
    assert row.gateway_version > reported


def test_a_report_taken_before_the_deletion_reached_aws_is_deleted_with_it(aws):
    device = aws_device_with_thing("thermostat-6")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    shadow_push.push_due()
    services.delete(device, "", actor="otto")
    # A report AWS took before the deletion reached it (AWS's version moves with it).
    data = client.client("iot-data")
    answer = data.update_thing_shadow(
        thingName="thermostat-6", payload=orjson.dumps({"state": {"reported": {"target": 21}}})
    )
    version = orjson.loads(answer["payload"].read())["version"]
    queue = make_queue()
    forward(queue, documents_topic("thermostat-6"), documents(version, reported={"target": 21}))
    drain(queue)
    assert Shadow.objects.get(device=device, name="").live

    shadow_push.push_due()
    assert not Shadow.objects.get(device=device, name="").live
    assert not on_aws("thermostat-6")


def test_a_shadow_aws_created_again_after_the_deletion_stays(aws):
    device = aws_device_with_thing("thermostat-7")
    services.set_desired(device, "", {"target": 21}, actor="otto")
    shadow_push.push_due()
    services.delete(device, "", actor="otto")
    # The device reports just after AWS deletes it: AWS creates the shadow again, newer than the
    # deletion, and the queue's consumer takes it before the pusher records the deletion.
    newer = thing_shadow("thermostat-7")["version"] + 2
    queue = make_queue()
    forward(queue, documents_topic("thermostat-7"), documents(newer, reported={"target": 22}))
    drain(queue)

    shadow_push.push_due()

    row = Shadow.objects.get(device=device, name="")
    assert row.live and row.reported_state == {"target": 22}
