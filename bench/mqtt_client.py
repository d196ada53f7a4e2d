"""A minimal MQTT 3.1.1 client on asyncio for the load generators (bench only).

Hundreds of simulated devices, each on its own mutual-TLS connection with its own certificate,
driven by ONE thread's event loop: paho gives each client a network thread, and hundreds of
threads contending for the GIL made the load generator, not the portal, the limit (50 ms p50
through a relay with no database). Only what a device of the benches does: CONNECT (clean
session), SUBSCRIBE, PUBLISH at QoS 1 (PUBACKs counted, not awaited: one request is in flight
per device anyway), PUBACK for what it receives at QoS 1, PINGREQ.
"""

import asyncio
import ssl
import struct
import threading
from collections.abc import Callable

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
KEEPALIVE_SECONDS = 60

OnMessage = Callable[[str, bytes], None]


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


class Client(asyncio.Protocol):
    """One device connection. `on_message(topic, payload)` runs on the event loop's thread."""

    def __init__(self, client_id: str, on_message: OnMessage):
        self.client_id = client_id
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.outgoing: bytearray | None = None  # while handling a read
        self.packet_id = 0
        self.pubacks = 0  # PUBACKs the broker sent for this client's publishes
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future = loop.create_future()
        self.subacks: dict[int, asyncio.Future] = {}

    # --- asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        header = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", KEEPALIVE_SECONDS)
        transport.write(_packet(CONNECT, 0, header + _string(self.client_id)))

    def connection_lost(self, exc) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"{self.client_id}: {exc}"))

    def data_received(self, data: bytes) -> None:
        # What this read makes the client send (PUBACKs, the next request) leaves in one TLS
        # record and one write, not one each: less work here and in the broker.
        self.outgoing = bytearray()
        try:
            self._parse(data)
        finally:
            outgoing, self.outgoing = self.outgoing, None
            if outgoing:
                self.transport.write(outgoing)

    def _write(self, packet: bytes) -> None:
        if self.outgoing is not None:
            self.outgoing += packet
        else:
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
            self.pubacks += 1
        elif kind == CONNACK:
            if body[1] != 0:
                self.connected.set_exception(
                    ConnectionError(f"{self.client_id}: CONNACK return code {body[1]}")
                )
            else:
                self.connected.set_result(None)
        elif kind == SUBACK:
            packet_id = struct.unpack_from("!H", body)[0]
            future = self.subacks.pop(packet_id)
            if 0x80 in body[2:]:
                future.set_exception(RuntimeError(f"{self.client_id}: a subscription was refused"))
            else:
                future.set_result(None)

    def _next_id(self) -> int:
        self.packet_id = self.packet_id % 65535 + 1
        return self.packet_id

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1."""
        body = _string(topic) + struct.pack("!H", self._next_id()) + payload
        self._write(_packet(PUBLISH, 0x02, body))

    async def subscribe(self, filters: list[str]) -> None:
        """Subscribe at QoS 1 (as the AWS SDK's jobs client does) and wait for the SUBACK."""
        packet_id = self._next_id()
        future = asyncio.get_running_loop().create_future()
        self.subacks[packet_id] = future
        body = struct.pack("!H", packet_id) + b"".join(_string(f) + b"\x01" for f in filters)
        self.transport.write(_packet(SUBSCRIBE, 0x02, body))
        await future

    def ping(self) -> None:
        self.transport.write(_packet(PINGREQ, 0, b""))

    def disconnect(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_packet(DISCONNECT, 0, b""))
            self.transport.close()


async def connect(
    host: str, port: int, context: ssl.SSLContext, client_id: str, on_message: OnMessage
) -> Client:
    """A connected client (CONNACK received)."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: Client(client_id, on_message), host, port, ssl=context, server_hostname=host
    )
    await asyncio.wait_for(client.connected, 30)
    return client


class LoopThread:
    """The load generator's one event loop, in a thread of its own; the bench's main thread
    hands it coroutines with `call`."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="devices", daemon=True).start()

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()
