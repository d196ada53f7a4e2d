"""Ask for a message to be sent to a device. Services call `send`; only the bridge publishes."""

import orjson
from django.db import connection

from fleetportal.models import OutboxMessage

NOTIFY_CHANNEL = "fleetportal_outbox"


def send(topic: str, payload: dict | bytes, *, device_id: str = "", qos: int = 1) -> OutboxMessage:
    """Queue one message in the current transaction; the bridge is woken when it commits.

    NOTIFY inside a transaction is delivered at commit and dropped on rollback, which is exactly
    when the bridge should (and should not) look.
    """
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    message = OutboxMessage.objects.create(topic=topic, payload=body, qos=qos, device_id=device_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return message
