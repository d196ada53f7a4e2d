"""The topic rules' SQL and the envelope they put on the queue (aws_gateway/rule.py)."""

import base64

import orjson

from aws_gateway import rule


def test_each_rule_forwards_one_filter_with_the_envelope_select():
    assert [f.topic_filter for f in rule.FORWARDS] == [
        "$aws/things/+/shadow/update/documents",
        "$aws/things/+/shadow/name/+/update/documents",
        "$aws/events/presence/+/+",
        "$aws/events/jobExecution/+/+",
        "devices/+/telemetry",
    ]
    assert rule.LIFECYCLE.sql == (
        "SELECT topic() AS topic, encode(*, 'base64') AS payload, timestamp() AS received_at "
        "FROM '$aws/events/presence/+/+'"
    )
    assert len({f.rule_name for f in rule.FORWARDS}) == len(rule.FORWARDS)


def test_a_forwarded_message_carries_the_payload_byte_for_byte():
    raw = b"\x00not json\xff"
    body = orjson.loads(rule.forwarded_message("devices/pump-7/telemetry", raw, 1765130000123))

    assert body["topic"] == "devices/pump-7/telemetry"
    assert base64.b64decode(body["payload"]) == raw
    assert body["received_at"] == 1765130000123
