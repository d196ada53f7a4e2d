"""What the simulator's tests share: an Environment pointing at the suite's brokers, devices with
certificates the portal issued (written as the simulator's store), a claim certificate on disk,
and waiting for the portal to get somewhere."""

import time
from pathlib import Path

from devices import provisioning
from devices.choices import DeviceStatus
from devices.models import ProvisioningTemplate
from simulator import Claim, Environment, profiles
from simulator.identity import CLAIM_CERTIFICATE, CLAIM_KEY, Store
from tests.devices.credential_helpers import credentialed, key_pem

# Clocks of a few seconds: a test sees many reports, reboots and faults within its run.
QUICK_TIMING = {
    "report_seconds": 1,
    "telemetry_seconds": 1,
    "reboot_seconds": 0.5,
    "offline_every_seconds": 4,
    "offline_seconds": 1,
    "rotate_after_seconds": 2,
    "malformed_every_seconds": 1.5,
    "connect_spread_seconds": 1,
    "keepalive_seconds": 30,
}


def quick_profile(faults: dict | None = None, seed: int = 0) -> profiles.Profile:
    return profiles.from_dict(
        {"seed": seed, "faults": faults or {}, "timing": QUICK_TIMING}, name="test"
    )


def environment(broker, store: Path, **extra) -> Environment:
    return Environment(
        host=broker.host,
        device_port=broker.device_port,
        claim_port=broker.claim_port,
        ca_file=broker.chain_file,
        store=store,
        **extra,
    )


def issued_store(directory: Path, device_ids: list[str]) -> Path:
    """Register the devices with a portal-issued certificate each, written as a bulk bundle
    unzipped: <device_id>/certificate.pem and private.key."""
    store = Store(directory)
    for device_id in device_ids:
        device = credentialed(device_id, status=DeviceStatus.ACTIVE)
        store.save(device_id, key_pem(device.key), device.credential.credential_value)
    return directory


def claim_template(name: str, directory: Path, **fields) -> Claim:
    """A provisioning template (the broker's claim ACL follows) and its claim certificate in
    `directory`, as manage.py issue_claim_certificate writes it."""
    fields.setdefault("device_type", "sensor")
    fields.setdefault("parameters", {"SerialNumber": {"required": True}})
    template = provisioning.save_template(ProvisioningTemplate(name=name, **fields))
    issued = provisioning.issue_claim_certificate(template, actor="test")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CLAIM_KEY).write_text(issued.key_pem)
    (directory / CLAIM_CERTIFICATE).write_text(issued.cert_pem)
    return Claim(directory, name)


def eventually(predicate, timeout: float = 30.0, every: float = 0.2, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(every)
