#!/usr/bin/env python
"""Reports consumed from AWS IoT's SQS queue: batched (runsqs) against one message per transaction.

    .venv/bin/python bench/aws_sqs.py [--devices 1000] [--messages 5000]

Into a scratch database (BENCH_DATABASE_URL, default fleetportal_bench_aws_sqs, made and migrated
when missing) registers --devices devices on the AWS gateway, starts moto in server mode on a
free port (SQS, as the test suite does) and, for each mode, puts --messages shadow
`update/documents` messages on a fresh queue in the rules' envelope (each device's versions
rising, as AWS sends them), then consumes the queue to the end:

- batched: aws_gateway.consumer.consume — 10 messages per receive, one transaction, one
  DeleteMessageBatch (what runsqs does);
- one by one: the same receives, but each message applied in its own transaction and deleted
  with its own DeleteMessage (the baseline).

Prints messages per second end to end (SQS round trips to moto included), the same for the
database side alone (the time inside the transactions), and the ratios.
"""

import argparse
import base64
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("FLEETPORTAL_SECRET_KEY", "bench-only-not-secret")
os.environ.setdefault("FLEETPORTAL_LOG_LEVEL", "WARNING")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_aws_sqs"
)
os.environ["DJANGO_SETTINGS_MODULE"] = "fleetportal.settings"

import django

django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from aws_gateway import client, consumer  # noqa: E402
from bench import report  # noqa: E402
from devices import services as devices  # noqa: E402
from devices.models import Device  # noqa: E402
from fleetportal import topics  # noqa: E402
from shadows.models import Shadow  # noqa: E402
from tests.aws.moto_server import FAKE_CREDENTIALS, MotoServer  # noqa: E402

PREFIX = "sqs-bench"


def ensure_database() -> None:
    call_command("ensuredb", verbosity=0)
    call_command("migrate", verbosity=0)


def fleet(size: int) -> list[str]:
    have = Device.objects.filter(device_id__startswith=PREFIX).count()
    rows = [{"device_id": f"{PREFIX}-{n:06d}", "device_type": "sensor"} for n in range(have, size)]
    for start in range(0, len(rows), 5000):
        devices.register_devices(rows[start : start + 5000], actor="bench")
    Device.objects.filter(device_id__startswith=PREFIX).update(gateway="aws")
    return [f"{PREFIX}-{n:06d}" for n in range(size)]


def bodies(things: list[str], count: int, first_version: int) -> list[str]:
    """`count` documents messages, round robin over the things, versions rising per thing."""
    out = []
    for n in range(count):
        thing = things[n % len(things)]
        version = first_version + n // len(things)
        current = {
            "state": {"reported": {"seq": n, "temperature": 20 + n % 7}},
            "metadata": {"reported": {"seq": {"timestamp": 1_765_000_000 + n}}},
            "version": version,
        }
        payload = {"previous": None, "current": current, "timestamp": 1_765_000_000 + n}
        out.append(
            orjson.dumps(
                {
                    "topic": topics.shadow_topic(thing, "", "update", "documents"),
                    "payload": base64.b64encode(orjson.dumps(payload)).decode(),
                    "received_at": int(time.time() * 1000),
                }
            ).decode()
        )
    return out


def fill(name: str, messages: list[str]) -> str:
    sqs = client.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return url


def batched(url: str) -> tuple[int, float]:
    done, inside = 0, 0.0
    while True:
        messages = consumer.receive(url, wait=0)
        if not messages:
            return done, inside
        started = time.perf_counter()
        result = consumer.apply(messages)
        inside += time.perf_counter() - started
        consumer.delete(url, result.done)
        done += len(messages)


def one_by_one(url: str) -> tuple[int, float]:
    sqs = client.client("sqs")
    done, inside = 0, 0.0
    while True:
        messages = consumer.receive(url, wait=0)
        if not messages:
            return done, inside
        for message in messages:
            started = time.perf_counter()
            consumer.apply([message])
            inside += time.perf_counter() - started
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            done += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    ensure_database()
    server = MotoServer().start()
    for name, value in FAKE_CREDENTIALS.items():
        os.environ[name] = value
    settings.AWS_ENDPOINT_URL = server.url
    settings.AWS_REGION = FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]
    client.forget_clients()
    try:
        things = fleet(args.devices)
        Shadow.objects.filter(device__device_id__startswith=PREFIX).delete()
        results = {}
        version = 1
        for mode, consume in (("one message per transaction", one_by_one), ("batched", batched)):
            url = fill(f"bench-{mode.split()[0]}", bodies(things, args.messages, version))
            version += args.messages // len(things) + 1
            started = time.perf_counter()
            done, inside = consume(url)
            results[mode] = (done, time.perf_counter() - started, inside)
    finally:
        server.stop()
    print(f"{args.messages} shadow documents from SQS (moto server), {args.devices} devices")
    print("| mode | messages | end to end msg/s | database side msg/s |")
    print("|---|---:|---:|---:|")
    for mode, (done, total, inside) in results.items():
        print(f"| {mode} | {done} | {done / total:,.0f} | {done / inside:,.0f} |")
    base, fast = results["one message per transaction"], results["batched"]
    print(
        f"batched / one by one: end to end {base[1] / fast[1]:.1f}x, "
        f"database side {base[2] / fast[2]:.1f}x"
    )
    report.size(devices=args.devices, messages=args.messages)
    for side, index in (("end to end", 1), ("database side", 2)):
        slow_rate, fast_rate = base[0] / base[index], fast[0] / fast[index]
        report.record(f"reports from SQS, {side}, one per transaction", slow_rate, "/s")
        report.record(
            f"reports from SQS, {side}, batched",
            fast_rate,
            "/s",
            baseline=f"reports from SQS, {side}, one per transaction",
            baseline_value=slow_rate,
        )


if __name__ == "__main__":
    main()
