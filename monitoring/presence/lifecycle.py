"""AWS IoT's lifecycle events, published for integrators as AWS IoT Core publishes them
(developerguide/life-cycle-events.html): `$aws/events/presence/connected/<clientId>` and
`…/disconnected/<clientId>`, through the outbox like every portal→broker message.

Like AWS's, they may arrive out of order or twice (a bridge batch replayed after a crash).
sessionIdentifier is derived from the connection key, so a connect and its disconnect carry the
same one; versionNumber counts the device's connections.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from fleetportal import topics
from monitoring.presence.choices import PresenceReason
from monitoring.presence.transitions import LOG_REASONS, Change, Connected, Disconnected, Signal

# Our reasons in AWS's words (disconnectReason).
AWS_REASONS = {
    PresenceReason.CLIENT_DISCONNECT: "CLIENT_INITIATED_DISCONNECT",
    PresenceReason.CONNECTION_CLOSED: "CONNECTION_LOST",
    PresenceReason.SOCKET_ERROR: "CONNECTION_LOST",
    PresenceReason.KEEPALIVE_TIMEOUT: "MQTT_KEEP_ALIVE_TIMEOUT",
    PresenceReason.TAKEN_OVER: "DUPLICATE_CLIENTID",
    PresenceReason.ADMINISTRATIVE: "SERVER_INITIATED_DISCONNECT",
    PresenceReason.NOT_AUTHORISED: "FORBIDDEN_ACCESS",
    PresenceReason.PROTOCOL_ERROR: "CLIENT_ERROR",
    PresenceReason.ERROR: "SERVER_ERROR",
}
_SESSIONS = uuid.UUID("5f0c6a4e-2b1d-4c61-9a53-7d0f2e8b9c11")  # namespace of sessionIdentifier


def message(device_id: str, change: Change, signal: Signal, principal: str) -> tuple:
    """The outbox row (topic, payload, device_id) of one connect or disconnect."""
    state = change.state
    payload = {
        "clientId": device_id,
        "timestamp": int(signal.at.timestamp() * 1000),
        "eventType": change.lifecycle,
        "sessionIdentifier": str(uuid.uuid5(_SESSIONS, f"{device_id}/{state.connection}")),
        "principalIdentifier": principal,
        "versionNumber": state.connections,
    }
    if change.lifecycle == topics.LIFECYCLE_CONNECTED:
        payload["ipAddress"] = state.connection.partition("@")[0].rpartition(":")[0]
    else:
        reason = AWS_REASONS.get(getattr(signal, "reason", ""), "SERVER_ERROR")
        payload["clientInitiatedDisconnect"] = reason == "CLIENT_INITIATED_DISCONNECT"
        payload["disconnectReason"] = reason
    return (topics.lifecycle_topic(change.lifecycle, device_id), payload, device_id)


# AWS's disconnectReason back to the broker-log reason that means the same (the first wins).
_FROM_AWS = {}
for _log_reason, _reason in LOG_REASONS.items():
    _FROM_AWS.setdefault(AWS_REASONS[_reason], _log_reason)


def signal_of(event: dict[str, Any]) -> Signal | None:
    """The presence signal of a lifecycle event AWS IoT Core published about one of its devices
    (the AWS gateway forwards them): a connect keyed by the address and AWS's timestamp, a
    disconnect ending the connection that started before it. None for other event types."""
    at = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    if event.get("eventType") == topics.LIFECYCLE_CONNECTED:
        return Connected(at, str(event.get("ipAddress") or ""), 0, logged_at=at)
    if event.get("eventType") == topics.LIFECYCLE_DISCONNECTED:
        reason = _FROM_AWS.get(str(event.get("disconnectReason")), "")
        return Disconnected(at, reason, logged_at=at)
    return None
