"""What the bridge tells presence: the broker log's connect and disconnect lines
(fleetportal.bridge.connections) and devices/<id>/presence messages. Thin: each turns its input
into a signal for monitoring.presence.writes, which writes per batch."""

from datetime import UTC, datetime

import orjson

from fleetportal.bridge import connections, router
from monitoring.presence import writes
from monitoring.presence.transitions import Announced, Connected, Disconnected

_MAX_PAYLOAD = 1024  # {"state": "offline", "graceful": true, "ts": …} is far smaller


def on_connected(event: connections.DeviceConnected) -> None:
    signal = Connected(event.at, event.address, event.port, event.logged_at)
    writes.record(event.client_id, signal)


def on_disconnected(event: connections.DeviceDisconnected) -> None:
    writes.record(event.client_id, Disconnected(event.at, event.reason.value, event.logged_at))


def on_presence_message(message: router.InboundMessage) -> None:
    """{"state": "online" | "offline"} (a last will is an offline one); anything else is
    acknowledged and ignored — the message itself still counted as a sign of life."""
    signal = read_announcement(message.payload, message.received_at)
    if signal is not None:
        writes.record(message.device_id, signal)


def read_announcement(payload: bytes, at: datetime) -> Announced | None:
    if len(payload) > _MAX_PAYLOAD:
        return None
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("state") not in ("online", "offline"):
        return None
    return Announced(
        at,
        online=document["state"] == "online",
        graceful=document.get("graceful") is True,
        sent_at=_epoch(document.get("ts")),
    )


def _epoch(value) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 < value < 32_503_680_000:  # before the year 3000
        return None
    return datetime.fromtimestamp(value, UTC)
