"""Why a device's presence last changed (Presence.reason, the device_online/offline events)."""

from django.db import models


class PresenceReason(models.TextChoices):
    # Online
    CONNECTED = "connected", "Connected (broker log)"
    MESSAGE = "message", "Sent a message while marked offline"
    STATE_ONLINE = "state_online", 'Published {"state": "online"}'
    # Offline: the broker's log (fleetportal.bridge.connections.DisconnectReason)
    CLIENT_DISCONNECT = "client_disconnect", "Sent DISCONNECT"
    CONNECTION_CLOSED = "connection_closed", "Closed its connection without DISCONNECT"
    KEEPALIVE_TIMEOUT = "keepalive_timeout", "Keep-alive timeout"
    SOCKET_ERROR = "socket_error", "Socket error"
    TAKEN_OVER = "taken_over", "Another connection took over its client id"
    ADMINISTRATIVE = "administrative", "Disconnected by the broker (administrative)"
    NOT_AUTHORISED = "not_authorised", "Not authorised"
    PROTOCOL_ERROR = "protocol_error", "Protocol error"
    ERROR = "error", "Other broker error"
    # Offline: presence messages and the sweep
    LAST_WILL = "last_will", "Last will published"
    STATE_OFFLINE = "state_offline", 'Published {"state": "offline", "graceful": true}'
    HEARTBEAT_MISSED = "heartbeat_missed", "Silent past its device type's heartbeat"


ONLINE_EVENT = "device_online"
OFFLINE_EVENT = "device_offline"
