"""The soak's simulated fleet, in a process of its own (bench/soak.py starts it as
`bench/soak.py --fleet SETUP.json RECORD.json`): its resident memory is measured apart from the
portal's, and it imports nothing of the portal.

SETUP.json names the broker, CA chain, claim certificate, firmware key, profile file and device
count. It runs until SIGTERM (or SIGINT), stops the devices cleanly, prints the summary and
writes RECORD.json: for each device, its faults, the firmware it runs and the last status it
sent for each job — the simulator's own account, which the soak compares with the portal's rows.
"""

import asyncio
import json
import signal
from pathlib import Path

from simulator import Claim, Environment, Fleet, device_ids, profiles


def environment(setup: dict) -> Environment:
    return Environment(
        host=setup["host"],
        device_port=setup["device_port"],
        claim_port=setup["claim_port"],
        ca_file=Path(setup["ca_file"]),
        store=Path(setup["store"]),
        claim=Claim(Path(setup["claim_dir"]), template=setup["template"]),
        firmware_key_pem=setup["firmware_key_pem"],
        device_type=setup["device_type"],
    )


def record(fleet: Fleet) -> dict:
    return {
        device.device_id: {
            "faults": sorted(device.faults),
            "version": device.version,
            "jobs": device.job_log,
            "undelivered_jobs": undelivered_jobs(device),
            "ignored_jobs": sorted(device.ignored_jobs),
        }
        for device in fleet.devices
    }


def undelivered_jobs(device) -> list[str]:
    """Jobs whose last update the device published but the broker never acknowledged: still
    waiting for a connection (the fleet was stopped mid-reboot) or for its PUBACK."""
    waiting = [topic for topic, _ in (*device.backlog, *device.inflight.values())]
    return sorted({t.split("/")[-2] for t in waiting if "/jobs/" in t and t.endswith("/update")})


async def run(fleet: Fleet):
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, fleet.stop)
    return await fleet.run()


def main(setup_file: Path, record_file: Path) -> int:
    setup = json.loads(setup_file.read_text())
    profile = profiles.load(setup["profile"])
    fleet = Fleet(environment(setup), profile, device_ids(setup["devices"], setup["prefix"]))
    stats = asyncio.run(run(fleet))
    print(stats.summary(len(fleet.devices)), flush=True)
    summary = {
        "count": dict(stats.count),
        "jobs": dict(stats.jobs),
        "faults": dict(stats.faults),
        "errors": dict(stats.errors),
        "last_errors": stats.last_errors,
    }
    partial = record_file.with_suffix(".tmp")
    partial.write_text(json.dumps({"devices": record(fleet), "stats": summary}))
    partial.replace(record_file)
    return 0
