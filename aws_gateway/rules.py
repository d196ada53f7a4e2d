"""The AWS IoT topic rules that feed the portal's queue (manage.py aws_setup creates them).

One rule per forwarded topic filter (fleetportal.topics.forwarded_filters), each selecting the
same envelope: the topic, the payload exactly as published (base64, so any payload — JSON or
not — arrives byte for byte) and AWS's receive time in milliseconds. aws_gateway.forwarded
reads it; the tests put exactly this on the queue, since moto runs no rules."""

from fleetportal import topics

SELECT = "SELECT topic() AS topic, encode(*, 'base64') AS payload, timestamp() AS received_at"


def rule_sql(topic_filter: str) -> str:
    return f"{SELECT} FROM '{topic_filter}'"


def rules() -> dict[str, str]:
    """{rule name: SQL}: rule names are [a-zA-Z0-9_]."""
    found = {}
    for kind, filters in topics.forwarded_filters().items():
        for n, topic_filter in enumerate(filters):
            name = f"fleetportal_{kind.replace('-', '_')}" + (f"_{n}" if n else "")
            found[name] = rule_sql(topic_filter)
    return found


def sqs_action(queue_url: str, role_arn: str) -> dict:
    """The rule's action: the message to the queue as is (not base64 again)."""
    return {"sqs": {"roleArn": role_arn, "queueUrl": queue_url, "useBase64": False}}
