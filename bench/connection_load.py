#!/usr/bin/env python
"""One load-generator process of bench/connections.py: thousands of mutual-TLS devices.

    bench/connections.py starts it (with the open-files limit raised: it inherits it); it reads
    its orders as JSON lines on stdin and reports as JSON lines on stdout. No Django, no portal
    imports: a device knows only the broker, its certificate and its topics.

Orders: the first line is the spec (broker address, CA file, certificate directory, its
devices as [index, device_id, update topic, accepted topic, rejected topic]); then
`{"steady": [t0, seconds, first, connected]}` (its devices' numbers among all connected)
and `{"stop": true}`. Reports: `progress` twice a second, `ramped` when done (or stopped by
failures), `steady` with the counts after the steady state.

Each device: a TCP socket bound to its source address before connect (loopback has ~28k
ephemeral ports per source address), TLS with its own certificate, MQTT CONNECT with
keep-alive 60 s, a SUBSCRIBE to its shadow's update/accepted and /rejected, a PINGREQ every
60 s (spread over the minute), and during the steady state one reported update every
`update_seconds` at QoS 1, spread evenly over the devices that connected.
"""

import asyncio
import asyncio.sslproto
import json
import math
import os
import random
import socket
import ssl
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.mqtt import KEEPALIVE_SECONDS, PINGRESP, Client

# asyncio gives every TLS connection a 256 KiB read buffer (Python 3.11, filled with zeros, so
# resident): 12 GiB for 50,000 devices. Our packets are small; 8 KiB only means more reads.
SSL_READ_BUFFER = 8 * 1024
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
FIRST_SOURCE_HOST = 2  # 127.0.0.2: the broker listens on 127.0.0.1
PROGRESS_SECONDS = 0.5


# --- pure helpers (tests/test_connections_bench.py) ---------------------------------------


def ephemeral_ports(text: str) -> int:
    """How many ephemeral ports /proc/sys/net/ipv4/ip_local_port_range ("32768\\t60999") gives."""
    low, high = (int(part) for part in text.split())
    return high - low + 1


def source_addresses(connections: int, ports_per_address: int, share: float = 0.8) -> list[str]:
    """Loopback source addresses (127.0.0.2, 127.0.0.3, …) enough for `connections` to one
    broker port, each address used for at most `share` of its ephemeral ports (the rest stay
    for everything else on the machine)."""
    per_address = max(1, int(ports_per_address * share))
    count = max(1, math.ceil(connections / per_address))
    if count > 250:
        raise ValueError(f"{connections:,} connections need {count} source addresses (max 250)")
    return [f"127.0.0.{FIRST_SOURCE_HOST + n}" for n in range(count)]


def source_address(index: int, addresses: list[str]) -> str:
    """Device `index`'s source address: round robin, so each address takes an equal share."""
    return addresses[index % len(addresses)]


def processes_needed(connections: int, open_files_hard: int, reserve: int = 256) -> int:
    """Load-generator processes for `connections`: each holds one descriptor per connection and
    `reserve` for itself, within the hard open-files limit it cannot raise. At least two, one
    per core the TLS handshakes can use."""
    per_process = open_files_hard - reserve
    if per_process < 1:
        raise ValueError(f"an open-files limit of {open_files_hard} leaves no room for devices")
    return max(2, math.ceil(connections / per_process))


def update_offset(index: int, total: int, period: float) -> float:
    """Seconds into each period at which device `index` of `total` sends its update: evenly
    spread, so the fleet sends total / period updates per second."""
    return period * index / total


def update_schedule(
    devices_by_index: dict[int, object], first: int, connected: int, period: float
) -> list[tuple[float, object]]:
    """(offset, device) for one process's connected devices in index order: they are numbers
    `first`… of all `connected` devices, spread evenly over the period."""
    ordered = [device for _, device in sorted(devices_by_index.items())]
    return [
        (update_offset(first + number, connected, period), device)
        for number, device in enumerate(ordered)
    ]


def percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


# --- one device --------------------------------------------------------------------------------


class Device(Client):
    """A device's connection: counts its replies, pings and whether the broker dropped it."""

    def __init__(self, device_id: str, update_topic: str, load: "Load"):
        super().__init__(device_id, self._on_message)
        self.load = load
        self.update_topic = update_topic
        self.sent: dict[str, float] = {}
        self.sequence = 0
        self.closing = False

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        if self in self.load.online and not self.closing:
            self.load.dropped[str(exc or "closed by the broker")] += 1
            self.load.online.discard(self)

    def _received(self, kind: int, flags: int, body: bytes) -> None:
        if kind == PINGRESP:
            self.load.pingresps += 1
        super()._received(kind, flags, body)

    def _on_message(self, topic: str, payload: bytes) -> None:
        token = json.loads(payload).get("clientToken")
        started = self.sent.pop(token, None)
        if started is None:
            return
        if topic.endswith("/accepted"):
            self.load.accepted += 1
            self.load.latencies.append(time.monotonic() - started)
        else:
            self.load.rejected += 1

    def report(self) -> None:
        """One reported update at QoS 1, as firmware sends its state."""
        self.sequence += 1
        token = f"{self.client_id}-{self.sequence}"
        reported = {
            "battery": round(random.uniform(20, 100), 1),
            "rssi": random.randint(-90, -40),
            "uptime": int(time.monotonic()),
        }
        self.sent[token] = time.monotonic()
        self.publish(
            self.update_topic,
            json.dumps({"state": {"reported": reported}, "clientToken": token}).encode(),
        )

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


# --- the load --------------------------------------------------------------------------------


class Load:
    def __init__(self, spec: dict):
        self.spec = spec
        self.ca_data = Path(spec["ca_file"]).read_text()
        self.cert_dir = Path(spec["cert_dir"])
        self.online: set[Device] = set()
        self.by_index: dict[int, Device] = {}
        self.connected = 0
        self.failures: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.accepted = self.rejected = self.updates = self.pings = self.pingresps = 0
        self.latencies: list[float] = []
        self.tcp_seconds: list[float] = []  # connect() until the TCP connection is up
        self.connect_seconds: list[float] = []  # … until subscribed (TLS, CONNACK, SUBACK)

    def context(self, device_id: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=self.ca_data)
        context.load_cert_chain(self.cert_dir / f"{device_id}.pem")
        return context

    async def connect(self, index: int, device_id: str, *device_topics: str) -> None:
        spec, loop = self.spec, asyncio.get_running_loop()
        update_topic, *replies = device_topics
        started = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            # The port is chosen at connect() for the whole 4-tuple, not reserved by bind().
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source_address(index, spec["source_addresses"]), 0))
            async with asyncio.timeout(spec["connect_timeout"]):
                await loop.sock_connect(sock, (spec["host"], spec["port"]))
                tcp_connected = time.monotonic()
                _, device = await loop.create_connection(
                    lambda: Device(device_id, update_topic, self),
                    sock=sock,
                    ssl=self.context(device_id),
                    server_hostname=spec["server_hostname"],
                )
                await device.connected
                await device.subscribe(replies)
        except (OSError, TimeoutError, ConnectionError, RuntimeError) as exc:
            sock.close()
            self.failures[f"{type(exc).__name__}: {exc}"] += 1
            return
        self.connected += 1
        self.tcp_seconds.append(tcp_connected - started)
        self.connect_seconds.append(time.monotonic() - started)
        self.online.add(device)
        self.by_index[index] = device

    async def ramp(self) -> float:
        """Connect every device (`concurrency` at a time) unless failures reach the maximum."""
        started = time.monotonic()
        gate = asyncio.Semaphore(self.spec["concurrency"])

        async def one(index: int, *device: str) -> None:
            async with gate:
                if sum(self.failures.values()) < self.spec["max_failures"]:
                    await self.connect(index, *device)

        await asyncio.gather(*(one(*device) for device in self.spec["devices"]))
        return time.monotonic() - started

    async def keep_alive(self) -> None:
        """Every device pings once per keep-alive period; a 60th of them each second."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            for index, device in list(self.by_index.items()):
                if (index + tick) % KEEPALIVE_SECONDS == 0 and device in self.online:
                    device.ping()
                    self.pings += 1

    async def steady(self, start: float, seconds: float, first: int, connected: int) -> None:
        """Reported updates every `update_seconds` per device, from wall-clock `start`. This
        process's devices are numbers `first`… of the `connected` devices of all processes:
        offsets spread over the devices that did connect, not over those asked for, so a run
        stopped below its target still sends an even connected / period updates per second."""
        period = self.spec["update_seconds"]
        schedule = update_schedule(self.by_index, first, connected, period)
        end = start + seconds
        for cycle in range(math.ceil(seconds / period)):
            for offset, device in schedule:
                at = start + cycle * period + offset
                if at >= end:
                    break
                await asyncio.sleep(max(0.0, at - time.time()))
                if device in self.online:
                    device.report()
                    self.updates += 1
        await asyncio.sleep(max(0.0, end - time.time()))
        deadline = time.monotonic() + self.spec["drain_seconds"]
        while any(d.sent for d in self.online) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    def counts(self) -> dict:
        latencies, tcp = sorted(self.latencies), sorted(self.tcp_seconds)
        connecting = sorted(self.connect_seconds)
        return {
            "tcp_p50": percentile(tcp, 0.5),
            "tcp_p99": percentile(tcp, 0.99),
            "connect_p50": percentile(connecting, 0.5),
            "connect_p99": percentile(connecting, 0.99),
            "connected": self.connected,
            "online": len(self.online),
            "failures": self.failures.most_common(5),
            "failed": sum(self.failures.values()),
            "dropped": self.dropped.most_common(5),
            "updates": self.updates,
            "pubacks": sum(d.pubacks for d in self.by_index.values()),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "unanswered": sum(len(d.sent) for d in self.by_index.values()),
            "pings": self.pings,
            "pingresps": self.pingresps,
            "latency_p50": percentile(latencies, 0.5),
            "latency_p99": percentile(latencies, 0.99),
        }


def say(event: str, **values) -> None:
    print(json.dumps({"event": event, "pid": os.getpid(), **values}), flush=True)


async def progress(load: Load) -> None:
    while True:
        say(
            "progress",
            connected=load.connected,
            failed=sum(load.failures.values()),
            online=len(load.online),
            updates=load.updates,
            accepted=load.accepted,
        )
        await asyncio.sleep(PROGRESS_SECONDS)


async def main() -> None:
    loop = asyncio.get_running_loop()
    orders = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(orders), sys.stdin)
    load = Load(json.loads(await orders.readline()))
    keep_alive = asyncio.create_task(load.keep_alive())
    reporter = asyncio.create_task(progress(load))
    seconds = await load.ramp()
    say("ramped", seconds=seconds, **load.counts())
    while line := await orders.readline():
        order = json.loads(line)
        if "steady" in order:
            await load.steady(*order["steady"])
            say("steady", **load.counts())
        elif order.get("stop"):
            break
    keep_alive.cancel()
    reporter.cancel()
    for device in list(load.by_index.values()):
        device.close()


if __name__ == "__main__":
    asyncio.sslproto.SSLProtocol.max_size = SSL_READ_BUFFER
    asyncio.run(main())
