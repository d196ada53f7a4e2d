"""A small MQTT 3.1.1 client on asyncio: thousands of device connections on one event loop.

Each device has its own mutual-TLS connection with its own certificate, all driven by ONE
thread's event loop: paho gives each client a network thread, and hundreds of threads contending
for the GIL made the load generator, not the portal, the limit (50 ms p50 through a relay with
no database). The benches (bench/) and the simulator (simulator/) share this one client.

What a device needs and nothing more:
- CONNECT with a clean or a persistent session (`clean_session=False`: the broker keeps the
  subscriptions and queues QoS 1 messages while the device is away) and a last will;
- PUBLISH at QoS 0 or 1; a QoS 1 message stays in `inflight` until its PUBACK and is sent again
  (DUP) when the next connection resumes the session (`Client(inflight=old.inflight)`);
  `publish` does not wait (`pubacks` counts the acknowledgements), `publish_acked` does;
- SUBSCRIBE at QoS 1 (as the AWS SDK's clients do), waiting for the SUBACK;
- PUBACK for what it receives at QoS 1; PINGREQ every `keepalive * 3/4` seconds of silence, and
  the connection is closed when the broker stays silent for a whole keep-alive period more;
- DISCONNECT (a clean leave: no last will) or `abort()` (a lost link: the broker sends the will).
`connect_with_backoff` retries a refused or failed connection after 1, 2, 4 … `max_delay` s with
jitter, as the AWS SDK's reconnect does.
"""

import asyncio
import random
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
KEEPALIVE_SECONDS = 60
CONNACK_SECONDS = 30

OnMessage = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Will:
    """The message the broker publishes for the device when its connection is lost."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class ConnectionRefused(ConnectionError):
    """The broker answered CONNACK with a non-zero return code (or TLS refused us)."""


def _varint(length: int) -> bytes:
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def connect_packet(
    client_id: str, *, keepalive: int, clean_session: bool, will: Will | None
) -> bytes:
    flags = 0x02 if clean_session else 0
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _string(will.topic) + _string(will.payload)
    header = _string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    return _packet(CONNECT, 0, header + payload)


class Client(asyncio.Protocol):
    """One device connection. `on_message(topic, payload)` runs on the event loop's thread."""

    def __init__(
        self,
        client_id: str,
        on_message: OnMessage,
        *,
        keepalive: int = KEEPALIVE_SECONDS,
        clean_session: bool = True,
        will: Will | None = None,
        inflight: dict[int, tuple[str, bytes]] | None = None,
        packet_id: int = 0,
    ):
        self.client_id = client_id
        self.on_message = on_message
        self.keepalive = keepalive
        self.clean_session = clean_session
        self.will = will
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.outgoing: bytearray | None = None  # while handling a read
        self.packet_id = packet_id
        self.pubacks = 0  # PUBACKs the broker sent for this client's publishes
        # QoS 1 messages not yet acknowledged: packet id -> (topic, payload). A persistent
        # session hands them to the next connection, which sends them again.
        self.inflight: dict[int, tuple[str, bytes]] = {} if inflight is None else inflight
        self.session_present = False
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.connected: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()  # result: the reason, a string
        self.subacks: dict[int, asyncio.Future] = {}
        self.acked: dict[int, asyncio.Future] = {}
        self._last_sent = self._last_heard = loop.time()
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(
            connect_packet(
                self.client_id,
                keepalive=self.keepalive,
                clean_session=self.clean_session,
                will=self.will,
            )
        )

    def connection_lost(self, exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        reason = str(exc) if exc else "closed"
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"{self.client_id}: {reason}"))
        for future in (*self.subacks.values(), *self.acked.values()):
            if not future.done():
                future.set_exception(ConnectionError(f"{self.client_id}: connection lost"))
        self.subacks.clear()
        self.acked.clear()
        if not self.closed.done():
            self.closed.set_result(reason)

    def data_received(self, data: bytes) -> None:
        # What this read makes the client send (PUBACKs, the next request) leaves in one TLS
        # record and one write, not one each: less work here and in the broker.
        self._last_heard = self.loop.time()
        self.outgoing = bytearray()
        try:
            self._parse(data)
        finally:
            outgoing, self.outgoing = self.outgoing, None
            if outgoing and self.transport is not None and not self.transport.is_closing():
                self.transport.write(outgoing)

    def _write(self, packet: bytes) -> None:
        self._last_sent = self.loop.time()
        if self.outgoing is not None:
            self.outgoing += packet
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def _parse(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 2:
            length, multiplier, at = 0, 1, 1
            while True:
                if at >= len(buffer):
                    return  # the length is not complete yet
                digit = buffer[at]
                length += (digit & 0x7F) * multiplier
                multiplier *= 128
                at += 1
                if not digit & 0x80:
                    break
            if len(buffer) < at + length:
                return
            first = buffer[0]
            body = bytes(buffer[at : at + length])
            del buffer[: at + length]
            self._received(first >> 4, first & 0x0F, body)

    # --- packets

    def _received(self, kind: int, flags: int, body: bytes) -> None:
        if kind == PUBLISH:
            size = struct.unpack_from("!H", body)[0]
            topic = body[2 : 2 + size].decode()
            at = 2 + size
            if flags & 0x06:  # QoS 1: acknowledge it
                self._write(_packet(PUBACK, 0, body[at : at + 2]))
                at += 2
            self.on_message(topic, body[at:])
        elif kind == PUBACK:
            packet_id = struct.unpack_from("!H", body)[0]
            self.pubacks += 1
            self.inflight.pop(packet_id, None)
            future = self.acked.pop(packet_id, None)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == CONNACK:
            self._connack(body)
        elif kind == SUBACK:
            packet_id = struct.unpack_from("!H", body)[0]
            future = self.subacks.pop(packet_id, None)
            if future is None or future.done():
                return
            if 0x80 in body[2:]:
                future.set_exception(RuntimeError(f"{self.client_id}: a subscription was refused"))
            else:
                future.set_result(None)

    def _connack(self, body: bytes) -> None:
        if self.connected.done():
            return
        if body[1] != 0:
            self.connected.set_exception(
                ConnectionRefused(f"{self.client_id}: CONNACK return code {body[1]}")
            )
            return
        self.session_present = bool(body[0] & 0x01)
        # A resumed session's unacknowledged messages go again, flagged as duplicates.
        for packet_id, (topic, payload) in list(self.inflight.items()):
            self._write(
                _packet(PUBLISH, 0x0A, _string(topic) + struct.pack("!H", packet_id) + payload)
            )
        self.connected.set_result(None)
        if self.keepalive:
            self._timer = self.loop.call_later(self.keepalive * 0.75, self._keep_alive)

    def _keep_alive(self) -> None:
        now = self.loop.time()
        if now - self._last_heard > self.keepalive * 1.5:
            self.abort()  # the broker is gone; the device will reconnect
            return
        if now - self._last_sent >= self.keepalive * 0.75:
            self.ping()
        self._timer = self.loop.call_later(self.keepalive * 0.25, self._keep_alive)

    def _next_id(self) -> int:
        while True:
            self.packet_id = self.packet_id % 65535 + 1
            if self.packet_id not in self.inflight:
                return self.packet_id

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Publish (QoS 0 or 1) without waiting; returns the packet id (0 for QoS 0)."""
        if qos == 0:
            self._write(_packet(PUBLISH, 0, _string(topic) + payload))
            return 0
        packet_id = self._next_id()
        self.inflight[packet_id] = (topic, payload)
        self._write(_packet(PUBLISH, 0x02, _string(topic) + struct.pack("!H", packet_id) + payload))
        return packet_id

    async def publish_acked(self, topic: str, payload: bytes, timeout: float = 30) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        future = self.loop.create_future()
        self.acked[self.publish(topic, payload)] = future
        await asyncio.wait_for(future, timeout)

    async def subscribe(self, filters: list[str], timeout: float = 30) -> None:
        """Subscribe at QoS 1 (as the AWS SDK's clients do) and wait for the SUBACK."""
        packet_id = self._next_id()
        future = self.loop.create_future()
        self.subacks[packet_id] = future
        body = struct.pack("!H", packet_id) + b"".join(_string(f) + b"\x01" for f in filters)
        self._write(_packet(SUBSCRIBE, 0x02, body))
        await asyncio.wait_for(future, timeout)

    def ping(self) -> None:
        self._write(_packet(PINGREQ, 0, b""))

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def disconnect(self) -> None:
        """Leave cleanly: DISCONNECT, so the broker discards the last will."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(_packet(DISCONNECT, 0, b""))
            transport.close()

    def abort(self) -> None:
        """Drop the link without DISCONNECT, as a lost network does: the broker sends the will."""
        if self.transport is not None:
            self.transport.abort()


async def connect(
    host: str,
    port: int,
    context: ssl.SSLContext,
    client_id: str,
    on_message: OnMessage,
    *,
    timeout: float = CONNACK_SECONDS,
    **options,
) -> Client:
    """A connected client (CONNACK received); options as Client's (keepalive, clean_session,
    will, inflight, packet_id). A TLS refusal or a CONNACK refusal raises ConnectionRefused."""
    loop = asyncio.get_running_loop()
    try:
        _, client = await asyncio.wait_for(
            loop.create_connection(
                lambda: Client(client_id, on_message, **options),
                host,
                port,
                ssl=context,
                server_hostname=host,
            ),
            timeout,
        )
    except ssl.SSLError as exc:
        raise ConnectionRefused(f"{client_id}: TLS refused: {exc}") from exc
    try:
        await asyncio.wait_for(client.connected, timeout)
    except BaseException:
        client.abort()
        raise
    return client


def backoff_delays(first: float = 1.0, max_delay: float = 30.0) -> Iterator[float]:
    """1, 2, 4 … max_delay seconds, each with up to 25 % jitter (so a fleet does not return in
    lockstep after a broker restart)."""
    delay = first
    while True:
        yield delay * (1 + random.random() / 4)  # noqa: S311  (jitter, not a secret)
        delay = min(delay * 2, max_delay)


async def connect_with_backoff(
    host: str,
    port: int,
    context_factory: Callable[[], ssl.SSLContext],
    client_id: str,
    on_message: OnMessage,
    *,
    attempts: int | None = None,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
    on_retry: Callable[[Exception], None] | None = None,
    **options,
) -> Client:
    """connect(), tried again after each failure with growing pauses; `attempts` bounds the
    tries (None: until it works or the task is cancelled). The context is asked for anew on each
    try, so a device that rotated its certificate meanwhile uses the new one."""
    delays = backoff_delays(first_delay, max_delay)
    tried = 0
    while True:
        tried += 1
        try:
            return await connect(host, port, context_factory(), client_id, on_message, **options)
        except (TimeoutError, OSError) as exc:
            if attempts is not None and tried >= attempts:
                raise
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(next(delays))


class LoopThread:
    """One event loop in a thread of its own; the caller's thread hands it coroutines with
    `call` (the benches' load generators, the simulator inside tests)."""

    def __init__(self, name: str = "devices"):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def submit(self, coroutine):
        """Start a coroutine on the loop; returns its concurrent.futures.Future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
