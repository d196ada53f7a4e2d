import pytest

from aws_gateway import client
from fleetportal import gateways


def test_the_clients_reach_the_configured_endpoint(aws):
    iot = client.client("iot")
    iot.create_thing(thingName="sensor-1")
    assert [t["thingName"] for t in iot.list_things()["things"]] == ["sensor-1"]
    queue = client.client("sqs").create_queue(QueueName="fleetportal-reports")["QueueUrl"]
    assert queue.startswith(aws.url)


def test_each_test_starts_from_an_empty_account(aws):
    assert client.client("iot").list_things()["things"] == []


def test_an_unknown_service_is_refused_by_name():
    with pytest.raises(ValueError, match="'ec2'"):
        client.client("ec2")


def test_the_aws_gateway_is_registered_beside_the_default():
    assert gateways.choices()[0][0] == gateways.MOSQUITTO
    assert gateways.get("aws").label == "AWS IoT Core"
    with pytest.raises(gateways.GatewayTaken):
        gateways.register(gateways.Gateway("aws", "again"))
