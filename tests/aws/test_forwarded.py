"""What the rules forward and how its topics are read (no AWS needed)."""

import re

import pytest

from aws_gateway import rule
from fleetportal import topics


@pytest.mark.parametrize(
    ("topic", "kind", "device", "name"),
    [
        ("$aws/things/pump-1/shadow/update/documents", "shadow-documents", "pump-1", ""),
        (
            "$aws/things/pump-1/shadow/name/config/update/documents",
            "shadow-documents",
            "pump-1",
            "config",
        ),
        ("$aws/events/presence/connected/pump-1", "lifecycle", "pump-1", "connected"),
        ("$aws/events/presence/disconnected/pump-1", "lifecycle", "pump-1", "disconnected"),
        ("devices/pump-1/telemetry", "telemetry", "pump-1", ""),
    ],
)
def test_each_forwarded_topic_is_read_as_its_kind(topic, kind, device, name):
    route = topics.parse_forwarded(topic)
    assert (route.kind, route.device_id, route.name) == (kind, device, name)


def test_a_job_execution_event_names_its_job_and_operation():
    route = topics.parse_forwarded("$aws/events/jobExecution/fw-2_1/timed_out")
    assert (route.kind, route.job_id, route.operation) == ("job-execution", "fw-2_1", "timed_out")


@pytest.mark.parametrize(
    "topic",
    [
        "$aws/things/pump-1/shadow/update/accepted",
        "$aws/things//shadow/update/documents",
        "$aws/things/pump-1/shadow/name//update/documents",
        "$aws/events/presence/subscribed/pump-1",
        "$aws/events/jobExecution/bad id/succeeded",
        "$aws/events/jobExecution/fw-1/in_progress",
        "devices/pump-1/presence",
        "devices/pump-1/telemetry/extra",
    ],
)
def test_anything_else_is_not_forwarded(topic):
    assert topics.parse_forwarded(topic) is None


def test_the_rules_aws_setup_creates_forward_exactly_what_the_consumer_reads():
    created = {forward.topic_filter for forward in rule.FORWARDS}
    read = {f for filters in topics.forwarded_filters().values() for f in filters}
    assert created == read and len(rule.FORWARDS) == 5
    assert all(re.fullmatch(r"[a-zA-Z0-9_]+", forward.rule_name) for forward in rule.FORWARDS)
    envelope = "SELECT topic() AS topic, encode(*, 'base64') AS payload, timestamp() AS received_at"
    for forward in rule.FORWARDS:
        assert forward.sql == f"{envelope} FROM '{forward.topic_filter}'"
