"""AWS IoT's lifecycle events, published for integrators as AWS IoT Core publishes them
(developerguide/life-cycle-events.html): `$aws/events/presence/connected/<clientId>` and
`…/disconnected/<clientId>`, through the outbox like every portal→broker message.

Like AWS's, they may arrive out of order or twice (a bridge batch replayed after a crash).
sessionIdentifier is derived from the connection key, so a connect and its disconnect carry the
same one; versionNumber counts the device's connections.
"""

import uuid

from fleetportal import topics
from monitoring.presence.choices import PresenceReason
from monitoring.presence.transitions import Change, Signal

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
