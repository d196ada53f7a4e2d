"""How one signal changes one device's presence: pure, no Django, no database.

A signal is what the bridge learnt: a connect or disconnect line of the broker's log, a
`{"state": …}` message on devices/<id>/presence (a last will is one), or any message at all.
The rules (docs/monitoring-presence.md has the reasoning):

- A connection is keyed "address:port@<log time>" — the device's side of the TCP connection from
  the connect line plus the broker's time stamp of that line. A disconnect line names only the
  client id, so it ends the device's *current* connection, unless its own time stamp is earlier
  than that connection's: then it is an older connection's, arriving late, and changes nothing.
  A connect line older than the current connection is ignored the same way.
- An offline message within `will_grace` after the current connection started is an older
  connection's last will that came through another bridge partition after the new connect
  line: ignored. An optional "ts" (epoch seconds) earlier than the connection's start likewise.
- Any message from a device marked offline makes it online (reason "message"), unless it
  arrives within `will_grace` of the change to offline (sent before it, another partition).
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitoring.presence.choices import PresenceReason

LOG_REASONS = {
    "disconnected": PresenceReason.CLIENT_DISCONNECT,
    "connection_closed": PresenceReason.CONNECTION_CLOSED,
    "socket_error": PresenceReason.SOCKET_ERROR,
    "keepalive_timeout": PresenceReason.KEEPALIVE_TIMEOUT,
    "taken_over": PresenceReason.TAKEN_OVER,
    "administrative": PresenceReason.ADMINISTRATIVE,
    "not_authorised": PresenceReason.NOT_AUTHORISED,
    "protocol_error": PresenceReason.PROTOCOL_ERROR,
}


@dataclass(frozen=True)
class State:
    online: bool = False
    changed_at: datetime | None = None
    connection: str = ""
    connection_started: datetime | None = None
    connections: int = 0
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Connected:
    at: datetime
    address: str
    port: int
    logged_at: datetime | None = None

    @property
    def started(self) -> datetime:
        return self.logged_at or self.at

    @property
    def key(self) -> str:
        return f"{self.address}:{self.port}@{self.started.strftime('%Y-%m-%dT%H:%M:%S')}"


@dataclass(frozen=True)
class Disconnected:
    at: datetime
    log_reason: str  # fleetportal.bridge.connections.DisconnectReason
    logged_at: datetime | None = None

    @property
    def reason(self) -> str:
        return LOG_REASONS.get(self.log_reason, PresenceReason.ERROR)


@dataclass(frozen=True)
class Announced:
    """A {"state": "online" | "offline"} message (a last will is an offline one)."""

    at: datetime
    online: bool
    graceful: bool = False  # {"state": "offline", "graceful": true}: said before leaving
    sent_at: datetime | None = None  # the payload's optional "ts"


@dataclass(frozen=True)
class Heard:
    """Any message from the device."""

    at: datetime


Signal = Connected | Disconnected | Announced | Heard


@dataclass(frozen=True)
class Change:
    """The outcome of one signal: the new state; `flipped` when online changed (an event), and
    `lifecycle` "connected"/"disconnected" when the portal publishes a lifecycle event."""

    state: State
    flipped: bool = False
    lifecycle: str = ""


def apply(state: State, signal: Signal, *, will_grace: timedelta) -> Change:
    if isinstance(signal, Connected):
        return _connected(state, signal)
    if isinstance(signal, Disconnected):
        return _disconnected(state, signal)
    if isinstance(signal, Announced):
        return _announced(state, signal, will_grace)
    if state.changed_at is not None and signal.at - state.changed_at < will_grace:
        return Change(state)  # sent before the disconnect, handled by another partition after it
    return _go_online(state, signal.at, PresenceReason.MESSAGE)


def _connected(state: State, signal: Connected) -> Change:
    if state.connection_started is not None and signal.started < state.connection_started:
        return Change(state)  # an older connection's line, late
    if state.connection == signal.key and state.connection_started == signal.started:
        return Change(state)  # the current connection's line again (a redelivery)
    new = replace(
        state,
        connection=signal.key,
        connection_started=signal.started,
        connections=state.connections + 1,
        connected_at=signal.at,
    )
    flipped = not state.online
    if flipped:
        new = replace(new, online=True, changed_at=signal.at, reason=PresenceReason.CONNECTED)
    return Change(new, flipped, lifecycle="connected")


def _disconnected(state: State, signal: Disconnected) -> Change:
    started = state.connection_started
    if started is not None and signal.logged_at is not None and signal.logged_at < started:
        return Change(state)  # ends a connection older than the current one
    if not state.online:
        if state.connected_at is None or (
            state.disconnected_at and state.disconnected_at >= state.connected_at
        ):
            return Change(state)  # nothing open to end: the line repeats what we know
        # Marked offline by a will or the sweep: the log now says how the connection ended.
        return Change(replace(state, disconnected_at=signal.at), lifecycle="disconnected")
    return _go_offline(state, signal.at, signal.reason, lifecycle="disconnected")


def _announced(state: State, signal: Announced, will_grace: timedelta) -> Change:
    if signal.online:
        return _go_online(state, signal.at, PresenceReason.STATE_ONLINE)
    if state.connected_at is not None:
        if signal.at - state.connected_at < will_grace:
            return Change(state)  # an older connection's will, through another partition
        if signal.sent_at is not None and signal.sent_at < state.connected_at:
            return Change(state)
    reason = PresenceReason.STATE_OFFLINE if signal.graceful else PresenceReason.LAST_WILL
    return _go_offline(state, signal.at, reason)


def _go_online(state: State, at: datetime, reason: str) -> Change:
    if state.online:
        return Change(state)
    return Change(replace(state, online=True, changed_at=at, reason=reason), flipped=True)


def _go_offline(state: State, at: datetime, reason: str, lifecycle: str = "") -> Change:
    """disconnected_at is the connection's end as the broker's log tells it; a will or the
    sweep marks the device offline and leaves it for the log line that may follow."""
    if not state.online:
        return Change(state)
    new = replace(state, online=False, changed_at=at, reason=reason)
    if lifecycle:
        new = replace(new, disconnected_at=at)
    return Change(new, flipped=True, lifecycle=lifecycle)
