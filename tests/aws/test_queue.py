"""Reports from AWS IoT through SQS (manage.py runsqs): applied in one transaction through the
bridge's services, exactly once in effect, deleted only after the commit; anything that is not
what the rules send is counted, logged and deleted."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from aws_gateway import client, consumer
from aws_gateway.choices import LinkPart
from aws_gateway.models import LinkStatus
from fleetportal import topics
from fleetportal.bridge import record
from monitoring.models.presence import Presence
from monitoring.telemetry import queries
from shadows import mirror
from shadows.models import Shadow, ShadowHistory
from tests.aws.helpers import (
    aws_device_with_thing,
    documents,
    documents_topic,
    drain,
    envelope,
    forward,
    make_queue,
    waiting,
)
from tests.conftest import make_device

pytestmark = pytest.mark.django_db


def test_a_report_updates_the_portals_shadow_with_awss_version(aws):
    device = aws_device_with_thing("meter-1")
    queue = make_queue()
    forward(queue, documents_topic("meter-1"), documents(7, reported={"kwh": 12.5}))

    result = drain(queue)

    assert result.counts["applied"] == 1
    row = Shadow.objects.get(device=device, name="")
    assert row.reported_state == {"kwh": 12.5}
    assert row.version == row.gateway_version == 7
    assert row.metadata["reported"]["kwh"]["timestamp"] == 1_765_000_000
    assert waiting(queue) == 0
    assert LinkStatus.objects.get(part=LinkPart.QUEUE).applied == 1


def test_a_report_delivered_twice_changes_the_shadow_once(aws):
    device = aws_device_with_thing("meter-2")
    queue = make_queue()
    forward(queue, documents_topic("meter-2"), documents(3, reported={"kwh": 1}))
    messages = consumer.receive(queue, wait=0)
    first, again = consumer.apply(messages), consumer.apply(messages)  # SQS redelivers
    assert (first.counts["applied"], again.counts["stale"]) == (1, 1)
    row = Shadow.objects.get(device=device)
    assert ShadowHistory.objects.filter(shadow=row).count() == 1
    assert row.version == 3


def test_an_older_report_after_a_newer_one_changes_nothing(aws):
    device = aws_device_with_thing("meter-3")
    queue = make_queue()
    forward(queue, documents_topic("meter-3"), documents(5, reported={"kwh": 5}))
    drain(queue)
    forward(queue, documents_topic("meter-3"), documents(4, reported={"kwh": 4}))
    result = drain(queue)
    assert result.counts["stale"] == 1
    row = Shadow.objects.get(device=device)
    assert (row.reported_state, row.version) == ({"kwh": 5}, 5)
    assert LinkStatus.objects.get(part=LinkPart.QUEUE).duplicates == 1
    assert waiting(queue) == 0


def test_a_named_shadow_report_and_a_desired_change_made_on_aws_are_mirrored(aws):
    device = aws_device_with_thing("meter-4")
    queue = make_queue()
    doc = documents(2, reported={"mode": "eco"}, desired={"mode": "eco"})
    forward(queue, documents_topic("meter-4", "settings"), doc)
    drain(queue)
    row = Shadow.objects.get(device=device, name="settings")
    assert row.desired_state == row.reported_state == {"mode": "eco"}


def test_messages_that_are_not_what_the_rules_send_are_counted_and_deleted(aws, caplog):
    aws_device_with_thing("meter-5")
    queue = make_queue()
    sqs = client.client("sqs")
    bodies = [
        "{not json",
        envelope(
            documents_topic("meter-5"), b'{"current": {"state": {"reported": {"a": "\\u0000"}}}}'
        ),
        envelope("devices/meter-5/unheard-of", {"a": 1}),
        envelope(documents_topic("meter-5"), {"current": {"state": {}}}),  # no version
        envelope(documents_topic("meter-5"), b"x" * (129 * 1024)),
        '{"Records": []}',
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    result = drain(queue)

    assert result.counts["refused"] == 6 and result.counts["applied"] == 0
    assert not Shadow.objects.exists()
    assert waiting(queue) == 0
    assert LinkStatus.objects.get(part=LinkPart.QUEUE).rejected == 6
    assert "refused" in caplog.text


def test_a_refused_message_goes_to_the_dead_letter_queue_when_one_is_set(aws, settings):
    queue, dead = make_queue(), make_queue("fleetportal-refused")
    settings.AWS_DEAD_LETTER_QUEUE_URL = dead
    client.client("sqs").send_message(QueueUrl=queue, MessageBody="{not json")
    drain(queue)
    kept = client.client("sqs").receive_message(QueueUrl=dead, MessageAttributeNames=["All"])
    assert [m["Body"] for m in kept["Messages"]] == ["{not json"]
    assert waiting(queue) == 0


def test_a_report_of_a_device_not_on_aws_is_refused(aws):
    make_device("local-7")
    queue = make_queue()
    forward(queue, documents_topic("local-7"), documents(2, reported={"x": 1}))
    assert drain(queue).counts["refused"] == 1
    assert not Shadow.objects.exists()


def test_a_failed_transaction_leaves_the_messages_on_the_queue(aws, monkeypatch):
    device = aws_device_with_thing("meter-6")
    queue = make_queue()
    forward(queue, documents_topic("meter-6"), documents(2, reported={"kwh": 2}))

    def database_down(*args, **kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(mirror, "apply", database_down)
    with pytest.raises(DatabaseError):
        drain(queue)
    assert waiting(queue) == 1
    monkeypatch.undo()
    drain(queue)
    assert Shadow.objects.get(device=device).reported_state == {"kwh": 2}
    assert waiting(queue) == 0


def lifecycle(event_type: str, thing: str, timestamp_ms: int, **extra) -> dict:
    """A lifecycle event as AWS IoT publishes it (life-cycle-events.html)."""
    return {
        "clientId": thing,
        "timestamp": timestamp_ms,
        "eventType": event_type,
        "sessionIdentifier": "00000000-0000-0000-0000-000000000000",
        "principalIdentifier": "12345678901234567890123456789012",
        "versionNumber": 1,
        **extra,
    }


def test_lifecycle_events_move_presence_and_a_late_disconnect_of_an_older_session_does_not(aws):
    device = aws_device_with_thing("meter-8")
    queue = make_queue()
    t = 1_765_000_000_000
    connected = lifecycle("connected", "meter-8", t, ipAddress="192.0.2.7")
    forward(queue, topics.lifecycle_topic("connected", "meter-8"), connected)
    drain(queue)
    assert Presence.objects.get(device=device).online

    gone = lifecycle(
        "disconnected",
        "meter-8",
        t + 60_000,
        clientInitiatedDisconnect=False,
        disconnectReason="MQTT_KEEP_ALIVE_TIMEOUT",
    )
    forward(queue, topics.lifecycle_topic("disconnected", "meter-8"), gone)
    forward(queue, topics.lifecycle_topic("disconnected", "meter-8"), gone)  # twice
    drain(queue)
    presence = Presence.objects.get(device=device)
    assert not presence.online and presence.reason == "keepalive_timeout"
    assert device.events.filter(event_type="device_offline").count() == 1


def test_telemetry_through_the_queue_is_stored_like_the_bridges(aws):
    device = aws_device_with_thing("meter-9")
    queue = make_queue()
    forward(queue, topics.device_topic("meter-9", "telemetry"), {"temperature": 21.5})
    drain(queue)
    assert [(name, value) for name, _, value in queries.points(device.pk)] == [
        ("temperature", 21.5)
    ]


def test_aws_away_is_retried_with_a_growing_pause_and_shown(aws, settings):
    queue = make_queue()
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"
    client.forget_clients()
    pauses = []
    consumer.run(queue, rounds=3, sleep=pauses.append)
    assert pauses == [1.0, 2.0, 4.0]
    link = LinkStatus.objects.get(part=LinkPart.QUEUE)
    assert not link.healthy and link.failures == 3


def test_a_configuration_reported_on_aws_is_marked_applied(aws):
    from shadows.configuration import services as configuration
    from shadows.models import DeviceConfiguration

    device = aws_device_with_thing("meter-10")
    configuration.set_value("interval", 30, device=device, actor="otto")
    queue = make_queue()
    doc = documents(9, desired={"interval": 30}, reported={"interval": 30})
    forward(queue, documents_topic("meter-10", "config"), doc)
    drain(queue)
    assert DeviceConfiguration.objects.get(device=device, config_key="interval").applied


def test_runsqs_consumes_the_configured_queue(aws, settings):
    from django.core.management import call_command

    device = aws_device_with_thing("meter-11")
    settings.AWS_QUEUE_URL = queue = make_queue()
    forward(queue, documents_topic("meter-11"), documents(2, reported={"on": True}))
    call_command("runsqs", "--rounds", "1")
    assert Shadow.objects.get(device=device).reported_state == {"on": True}


def test_runsqs_finds_the_queue_aws_setup_created_by_its_name(aws, settings):
    from django.core.management import call_command

    device = aws_device_with_thing("meter-12")
    settings.AWS_QUEUE_URL = ""
    queue = make_queue(settings.AWS_QUEUE_NAME)
    forward(queue, documents_topic("meter-12"), documents(2, reported={"on": False}))
    call_command("runsqs", "--rounds", "1")
    assert Shadow.objects.get(device=device).reported_state == {"on": False}


def test_runsqs_without_a_queue_says_what_to_do(aws, settings):
    from django.core.management import CommandError, call_command

    settings.AWS_QUEUE_URL = ""
    settings.AWS_QUEUE_NAME = "nobody-made-this"
    with pytest.raises(CommandError, match=r"'nobody-made-this' cannot be found.*aws_setup"):
        call_command("runsqs", "--rounds", "1")


def test_the_links_are_in_metrics(aws, client):
    from aws_gateway import status

    status.failed(LinkPart.QUEUE, "UnrecognizedClientException: The security token is invalid")
    text = client.get("/metrics").content.decode()
    assert 'fleetportal_aws_link_up{part="queue"} 0.0' in text
    assert "fleetportal_aws_shadow_changes_waiting 0.0" in text


def test_missing_credentials_are_shown_on_the_link_and_retried(aws, monkeypatch, tmp_path):
    queue = make_queue()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client.forget_clients()
    pauses = []
    consumer.run(queue, rounds=1, sleep=pauses.append)
    link = LinkStatus.objects.get(part=LinkPart.QUEUE)
    assert not link.healthy and "NoCredentialsError" in link.last_error
    assert pauses == [1.0]


def test_devices_on_aws_are_seen_by_their_reports_telemetry_and_connections_not_by_leaving(aws):
    """last_seen as the bridge keeps it for its devices: the rollout health check's "back
    online after reporting the new version" reads it for devices on AWS too. A shadow document
    counts at its own time, the one its confirmation of a version carries."""
    device = aws_device_with_thing("meter-seen")
    queue = make_queue()
    forward(queue, documents_topic("meter-seen"), documents(1, reported={"kwh": 1}))
    drain(queue)
    device.refresh_from_db()
    assert device.last_seen == datetime.fromtimestamp(1_765_000_000, UTC)

    forward(queue, topics.device_topic("meter-seen", "telemetry"), {"temperature": 20})
    drain(queue)
    device.refresh_from_db()
    assert timezone.now() - device.last_seen < timedelta(seconds=30)
    seen = device.last_seen

    later_ms = int((timezone.now() + timedelta(minutes=5)).timestamp() * 1000)
    gone = lifecycle("disconnected", "meter-seen", later_ms, clientInitiatedDisconnect=True)
    forward(queue, topics.lifecycle_topic("disconnected", "meter-seen"), gone)
    drain(queue)
    device.refresh_from_db()
    assert device.last_seen == seen


def test_the_consumer_says_how_far_behind_its_record_of_messages_runs(aws, monkeypatch):
    monkeypatch.setattr(consumer, "RECORD", record.Reporter("aws-sqs"))
    aws_device_with_thing("meter-late")
    queue = make_queue()
    received_ms = int((timezone.now() - timedelta(minutes=4)).timestamp() * 1000)
    body = envelope(topics.device_topic("meter-late", "telemetry"), {"t": 1}, received_ms)
    client.client("sqs").send_message(QueueUrl=queue, MessageBody=body)

    drain(queue)  # a message AWS received four minutes ago: the consumer is that far behind
    assert record.lag() >= timedelta(minutes=4)

    monkeypatch.setattr(consumer, "RECORD", record.Reporter("aws-sqs"))
    drain(queue)  # nothing waiting: caught up
    assert record.lag() < timedelta(seconds=5)
