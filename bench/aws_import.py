#!/usr/bin/env python
"""Import of an AWS IoT fleet into the portal: things per second, batched vs one by one, same run.

    .venv/bin/python bench/aws_import.py [--things 10000] [--baseline 1000] [--groups 10]

Starts moto in server mode in a process of its own (AWS's wire protocol over HTTP on a free
port), seeds it with `--things` things of one thing type with attributes, spread over
`--groups` thing groups, each with an active certificate of the portal's CA attached and a
classic shadow; then, each inside a transaction rolled back at the end (on a scratch database,
BENCH_DATABASE_URL, migrated first), times:

- things only (groups, things → devices and their sync states) and the full import (also
  certificates → credentials, shadows → the portal's shadows at AWS's version);
- each as the importer runs (aws_gateway.importer: ListThings pages of 250, AWS's per-thing
  reads 10 at once, one transaction per page) and one by one (the things listed once, then
  the same code for one thing at a time: its reads in turn and a transaction of its own) on the
  first `--baseline` things, reported per second. The seeding is not timed.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("FLEETPORTAL_SECRET_KEY", "bench-only-not-secret")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/fleetportal_bench_aws"
)
os.environ["DJANGO_SETTINGS_MODULE"] = "fleetportal.settings"
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}.items():
    os.environ[name] = value

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from aws_gateway import client, importer  # noqa: E402
from aws_gateway.models import FleetImport  # noqa: E402
from bench import report  # noqa: E402
from devices import credentials, pki  # noqa: E402
from tests.aws.moto_server import free_port  # noqa: E402

MOTO = """
from moto.core.config import default_user_config
default_user_config["iot"] = {"use_valid_cert": True}
from moto.server import ThreadedMotoServer
import sys, time
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
time.sleep(10**9)
"""


class Rollback(Exception):
    pass


def start_moto() -> subprocess.Popen:
    port = free_port()
    # Our own interpreter and script: nothing from outside.
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", MOTO, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{port}"
    settings.AWS_REGION = "eu-west-1"
    client.forget_clients()
    for _ in range(100):
        try:
            client.client("iot").list_things(maxResults=1)
            return process
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def seed(things: int, groups: int, extras: bool) -> None:
    iot, data = client.client("iot"), client.client("iot-data")
    iot.create_thing_type(thingTypeName="meter")
    for g in range(groups):
        iot.create_thing_group(thingGroupName=f"site-{g}")
    authority = credentials.load_authority()

    def one(n: int) -> None:
        name = f"meter-{n:06d}"
        iot.create_thing(
            thingName=name,
            thingTypeName="meter",
            attributePayload={"attributes": {"serialNumber": f"SN{n}", "model": "M-2"}},
        )
        iot.add_thing_to_thing_group(thingGroupName=f"site-{n % groups}", thingName=name)
        if not extras:
            return
        _key, issued = pki.generate_key_and_certificate(authority, name, 365)
        arn = iot.register_certificate_without_ca(certificatePem=issued.pem, status="ACTIVE")
        iot.attach_thing_principal(thingName=name, principal=arn["certificateArn"])
        shadow = {"state": {"desired": {"rate": n % 7}, "reported": {"rate": 1}}}
        data.update_thing_shadow(thingName=name, payload=orjson.dumps(shadow))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(things)))
    print(f"seeded {things:,} things in {time.perf_counter() - started:.0f} s", flush=True)


def batched(full: bool) -> tuple[int, float]:
    job = FleetImport.objects.create(created_by="bench", with_certificates=full, with_shadows=full)
    started = time.perf_counter()
    job = importer.run(job.pk)
    return job.devices_created, time.perf_counter() - started


def one_by_one(full: bool, limit: int) -> tuple[int, float]:
    job = FleetImport.objects.create(created_by="bench", with_certificates=full, with_shadows=full)
    iot = client.client("iot")
    listed = [
        thing for page in iot.get_paginator("list_things").paginate() for thing in page["things"]
    ][:limit]
    started = time.perf_counter()
    memberships = importer._import_groups(iot, job)
    with ThreadPoolExecutor(max_workers=1) as pool:
        for thing in listed:
            importer.import_things(pool, job, memberships, [thing], "")
    return job.devices_created, time.perf_counter() - started


def measured(label: str, run) -> float:
    try:
        with transaction.atomic():
            count, seconds = run()
            raise Rollback((count, seconds))
    except Rollback as done:
        count, seconds = done.args[0]
    rate = count / seconds
    print(f"  {label}: {count:,} devices in {seconds:.1f} s = {rate:,.0f}/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--things", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument(
        "--things-only", action="store_true", help="no certificates or shadows (a shorter run)"
    )
    options = parser.parse_args()
    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as ca_dir:
        settings.FLEETPORTAL_CA_DIR = Path(ca_dir)
        settings.FLEETPORTAL_CA_PASSPHRASE = None
        pki.create_ca(Path(ca_dir))
        moto = start_moto()
        try:
            seed(options.things, options.groups, extras=not options.things_only)
            variants = [(False, "things and groups"), (True, "+ certificates, shadows")]
            for full, label in variants[:1] if options.things_only else variants:
                fast = measured(f"{label}, importer", lambda full=full: batched(full))
                slow = measured(
                    f"{label}, one by one",
                    lambda full=full: one_by_one(full, options.baseline),
                )
                print(f"  {label}: {fast / slow:.1f}x", flush=True)
                report.size(things=options.things, baseline_things=options.baseline)
                report.record(f"import {label}, one by one", slow, "things/s")
                report.record(
                    f"import {label}",
                    fast,
                    "things/s",
                    baseline=f"import {label}, one by one",
                    baseline_value=slow,
                )
        finally:
            moto.terminate()


if __name__ == "__main__":
    main()
