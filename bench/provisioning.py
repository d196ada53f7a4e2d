#!/usr/bin/env python
"""Certificate issuance and claim provisioning through the portal, each against a ceiling.

    .venv/bin/python bench/provisioning.py [--csrs 500] [--claims 200] [--window 8]

(a) Certificates from CSRs in this one process through the service layer, database writes
    included — credentials.issue_credential one device at a time, credentials.issue_credentials
    in batches, a bulk job whose rows carry CSRs, and claim create-from-csr (which also holds
    the certificate in the CRL and reloads the broker) — against the pure crypto of the same
    CSRs (load, check, sign: the ceiling; see bench/provisioning_pki.py).
(b) Claim provisioning end to end over MQTT: a device with the claim certificate publishes
    create-from-csr, then RegisterThing, through Mosquitto → bridge → PostgreSQL and back, one
    request at a time and with --window requests in flight — against a relay on the bridge's
    own transport that answers the same requests with canned replies and no database.

Uses a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_provisioning; its device
tables are emptied first), a throwaway CA and its own Mosquitto on free ports.
"""

import argparse
import collections
import os
import queue
import socket
import ssl
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.django_setup import setup

setup("fleetportal_bench_provisioning")

import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench import report  # noqa: E402
from bench.broker_support import start_broker  # noqa: E402
from devices import bulk, credentials, pki, provisioning, revocation, services  # noqa: E402
from devices.models import DeviceCredential, ProvisioningTemplate  # noqa: E402
from fleetportal import broker, topics  # noqa: E402
from fleetportal.bridge.publisher import Publisher  # noqa: E402
from fleetportal.bridge.runner import Runner  # noqa: E402
from fleetportal.bridge.transport import Connection  # noqa: E402
from fleetportal.models import OutboxMessage  # noqa: E402

CSR_TOPIC = topics.CREATE_FROM_CSR
TEMPLATE = "bench"
PROVISION_TOPIC = topics.provision(TEMPLATE)
BATCH = bulk.PROGRESS_EVERY  # the bulk job's chunk
CLAIMANT = topics.Claimant.of("bench-claim", TEMPLATE)  # the claim certificate asking
# The batch paths bulk provisioning takes: issue 3's >= 500 certificates/s is theirs.
IN_BATCHES = "credentials.issue_credentials (CSR, + DB, in batches)"
BULK_JOB = "bulk job rows: register + issue (CSR), in steps"


def make_csrs(prefix: str, count: int) -> list[tuple[str, str, ec.EllipticCurvePrivateKey]]:
    rows = []
    for number in range(count):
        device_id = f"{prefix}-{number:06d}"
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)])
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
        csr = builder.sign(key, hashes.SHA256())
        rows.append((device_id, csr.public_bytes(serialization.Encoding.PEM).decode(), key))
    return rows


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def empty_tables() -> None:
    name = connection.settings_dict["NAME"]
    assert "bench" in name, f"refusing to empty {name}: not a bench database"
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE devices_deviceevent, devices_devicecredential, devices_device, "
            "devices_bulkprovisioningjob, devices_provisioningtemplate, "
            "fleetportal_outboxmessage CASCADE"
        )


# --- the broker -------------------------------------------------------------------------------


class Bridge:
    """The portal's bridge (runner + outbox publisher) in threads of this process."""

    def __init__(self):
        self.stop = threading.Event()
        self.runner = Runner(client_id="fleetportal.bridge.bench")
        self.publisher = Publisher(client_id="fleetportal.outbox.bench", poll_seconds=0.5)
        self.threads = [
            threading.Thread(target=worker.run, args=(self.stop,), daemon=True)
            for worker in (self.runner, self.publisher)
        ]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        assert self.runner.connection.wait_subscribed(10), "the bridge did not subscribe"
        assert self.publisher.connection.wait_connected(10), "the publisher did not connect"
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        Connection("fleetportal.bridge.bench", clean_session=True).close()


class Relay:
    """The ceiling for (b): the same requests answered at once on the bridge's transport."""

    def __init__(self):
        self.stop = threading.Event()
        self.connection = Connection("fleetportal.relay.bench", clean_session=True)
        self.thread = threading.Thread(target=self.run, daemon=True)
        certificate = Path(settings.BROKER_DIR, broker.SERVER_CERT).read_text()
        self.csr_reply = orjson.dumps(
            {
                "certificateId": "0" * 64,
                "certificatePem": certificate,
                "certificateOwnershipToken": "t" * 43,
            }
        )
        self.provision_reply = orjson.dumps({"thingName": "x", "deviceConfiguration": {}})

    def run(self):
        self.connection.subscribe(
            [topics.claim_filter(CSR_TOPIC), topics.claim_filter(topics.provision("+"))]
        )
        self.connection.connect()
        while not self.stop.is_set():
            try:
                received = self.connection.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            route = topics.parse(received.topic)
            reply = self.csr_reply if route.request_topic == CSR_TOPIC else self.provision_reply
            accepted = route.claimant.reply_topic(topics.accepted(route.request_topic))
            self.connection.publish(accepted, reply)
            self.connection.ack(received)

    def __enter__(self):
        self.thread.start()
        time.sleep(0.5)
        assert self.connection.wait_subscribed(10)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        self.connection.close()


# --- the claiming device ----------------------------------------------------------------------


class ClaimClient:
    """One device-side connection with the claim certificate, several requests in flight.

    Replies carry no request id (device-protocol.md §0.4), but the single bridge answers each
    topic's requests in order, so they are matched first in, first out per topic.
    """

    def __init__(self, key_file: Path, cert_file: Path):
        self.pending: dict[str, collections.deque[Future]] = {
            CSR_TOPIC: collections.deque(),
            PROVISION_TOPIC: collections.deque(),
        }
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-factory")
        context = ssl.create_default_context(cafile=str(Path(settings.BROKER_DIR, broker.CA_FILE)))
        context.load_cert_chain(str(cert_file), str(key_file))
        self.client.tls_set_context(context)
        self.client.max_inflight_messages_set(100)
        self.client.on_message = self.on_message
        # paho leaves Nagle on: each round trip would wait for the peer's delayed ACK (§7.12).
        self.client.on_socket_open = lambda client, userdata, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", settings.BROKER_CLAIM_PORT)
        self.client.loop_start()
        self.client.subscribe([(CSR_TOPIC + "/+", 1), (PROVISION_TOPIC + "/+", 1)])
        assert subscribed.wait(5)

    def on_message(self, client, userdata, message):
        request, outcome = message.topic.rsplit("/", 1)
        with self.lock:
            future = self.pending[request].popleft()
        if outcome == "accepted":
            future.set_result(orjson.loads(message.payload))
        else:
            future.set_exception(RuntimeError(message.payload.decode()))

    def request(self, topic: str, body: dict) -> dict:
        future: Future = Future()
        with self.lock:
            self.pending[topic].append(future)
            self.client.publish(topic, orjson.dumps(body), qos=1)
        return future.result(timeout=30)

    def provision(self, csr: str) -> dict:
        created = self.request(CSR_TOPIC, {"certificateSigningRequest": csr})
        token = created["certificateOwnershipToken"]
        return self.request(PROVISION_TOPIC, {"certificateOwnershipToken": token})

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def claims_per_second(client: ClaimClient, csrs, window: int) -> tuple[float, list[dict]]:
    with ThreadPoolExecutor(window) as pool:
        start = time.perf_counter()
        replies = list(pool.map(lambda row: client.provision(row[1]), csrs))
        return len(csrs) / (time.perf_counter() - start), replies


# --- the runs ---------------------------------------------------------------------------------


def bench_issuance(count: int, claims: int) -> list[tuple[str, int, float, float]]:
    ca = credentials.load_authority()
    csrs = make_csrs("pure", count)

    def pure():
        for device_id, pem, _ in csrs:
            csr = pki.load_csr(pem)
            pki.check_csr(csr, device_id)
            pki.issue_certificate(ca, csr.public_key(), device_id, days=365)

    ceiling = count / timed(pure)
    rows = [("pure crypto: load + check CSR, sign (ceiling)", count, ceiling, ceiling)]

    csrs = make_csrs("issue", count)
    devices = [
        services.register_device({"device_id": d, "device_type": "bench"}, actor="bench")
        for d, _, _ in csrs
    ]

    def issue():
        for device, (_, pem, _) in zip(devices, csrs, strict=True):
            credentials.issue_credential(device, csr_pem=pem, actor="bench")

    rows.append(("credentials.issue_credential (CSR, + DB)", count, count / timed(issue), ceiling))

    csrs = make_csrs("batch", count)
    registered = services.register_devices(
        [{"device_id": d, "device_type": "bench"} for d, _, _ in csrs], actor="bench"
    )
    pairs = [(device, pem) for device, (_, pem, _) in zip(registered, csrs, strict=True)]

    def issue_batches():
        for start in range(0, count, BATCH):
            issued = credentials.issue_credentials(pairs[start : start + BATCH], actor="bench")
            assert all(isinstance(c, DeviceCredential) for c in issued), issued[:3]

    rate = count / timed(issue_batches)
    rows.append((IN_BATCHES, count, rate, ceiling))

    csrs = make_csrs("bulk", count)
    text = "device_id,device_type,csr\n" + "".join(
        f'{d},bench,"{pem.strip()}"\n' for d, pem, _ in csrs
    )
    job = bulk.start_bulk_job(text, actor="bench")
    elapsed = timed(lambda: bulk.run_bulk_job(str(job.pk)))
    job.refresh_from_db()
    assert job.succeeded_rows == count, job.row_errors[:3]
    rows.append((BULK_JOB, count, count / elapsed, ceiling))

    csrs = make_csrs("claim", claims)

    def claim():
        for _, pem, _ in csrs:
            provisioning.create_from_csr(pem, CLAIMANT)

    rows.append(
        ("claim create_from_csr (+ CRL hold, reload)", claims, claims / timed(claim), ceiling)
    )
    return rows


def bench_mqtt(directory: Path, claims: int, window: int) -> list[tuple[str, int, float, float]]:
    # The replies (a) queued for nobody would reach our client first.
    OutboxMessage.objects.all().delete()
    ProvisioningTemplate.objects.create(name=TEMPLATE, device_type="bench")
    provisioning.refresh_broker()
    claim = provisioning.issue_claim_certificate(
        ProvisioningTemplate.objects.get(name=TEMPLATE), actor="bench"
    )
    key_file, cert_file = directory / "claim.key", directory / "claim.pem"
    key_file.write_text(claim.key_pem)
    cert_file.write_text(claim.cert_pem)
    client = ClaimClient(key_file, cert_file)
    rows = []
    try:
        ceilings = {}
        with Relay():
            for w in (1, window):
                rate, _ = claims_per_second(client, make_csrs(f"relay{w}", claims), w)
                ceilings[w] = rate
                rows.append((f"relay, no database, {w} in flight (ceiling)", claims, rate, rate))
        with Bridge():
            for w in (1, window):
                csrs = make_csrs(f"mqtt{w}", claims)
                rate, replies = claims_per_second(client, csrs, w)
                assert [r["thingName"] for r in replies] == [d for d, _, _ in csrs], "mismatch"
                rows.append(
                    (f"claim over MQTT: bridge + DB, {w} in flight", claims, rate, ceilings[w])
                )
    finally:
        client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csrs", type=int, default=500)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args()

    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    empty_tables()
    with tempfile.TemporaryDirectory() as directory:
        process, _ = start_broker(
            Path(directory),
            claim_templates=provisioning.claim_templates(),
            build_crl=revocation.build_current_crl,
        )
        try:
            rows = bench_issuance(args.csrs, args.claims)
            rows += bench_mqtt(Path(directory), args.claims, args.window)
        finally:
            process.terminate()
            process.wait(10)

    print(f"\n{os.cpu_count()} CPUs; P-256 CSRs; one process; batches and steps of {BATCH}\n")
    print("| measurement | n | per second | ceiling per second | of ceiling |")
    print("|---|---:|---:|---:|---:|")
    for name, n, rate, ceiling in rows:
        print(f"| {name} | {n} | {rate:,.0f} | {ceiling:,.0f} | {100 * rate / ceiling:.0f} % |")
    record(rows, args.window)


def record(rows: list[tuple[str, int, float, float]], window: int) -> None:
    """Issue 3: >= 500 certificates/s from CSRs in one worker process (the batch paths)."""
    report.size(batch=BATCH, window=window)
    for name, n, rate, ceiling in rows:
        if name.endswith("(ceiling)"):
            report.record(name, rate, "/s", count=n)
            continue
        over_mqtt = name.startswith("claim over MQTT")
        report.record(
            name,
            rate,
            "/s",
            target=500 if name in (IN_BATCHES, BULK_JOB) else None,
            baseline="relay, no database (ceiling)" if over_mqtt else "pure crypto (ceiling)",
            baseline_value=ceiling,
            count=n,
        )


if __name__ == "__main__":
    main()
