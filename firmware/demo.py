"""The live half of `make run`'s demo fleet: the seeded devices that have been in service get
certificates and are run by the device simulator; a firmware version for the temperature
sensors waits in the catalog with a draft staged rollout whose second wave the simulator's
`demo` profile halts (README: "Walk-through: ten minutes with the demo fleet").

Every function is idempotent: `make run` calls them on each start.
"""

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db.models import QuerySet

from devices import credentials, groups
from devices.choices import CredentialStatus
from devices.models import Device, DeviceCredential, DeviceGroup
from firmware import catalog
from firmware.models import FirmwareVersion
from firmware.rollouts import services as rollouts
from firmware.rollouts.models import Rollout
from fleetportal.errors import DomainError
from simulator.identity import Store, csr_pem, key_pem, new_key

ACTOR = "system"
DEMO_PREFIX = "demo-"  # seed_demo's device ids

# The update the walk-through rolls out: seed_demo's TS-200 sensors run 1.4.2 or 1.5.0.
DEVICE_TYPE, HARDWARE_VERSION, VERSION = "temperature-sensor", "rev-b", "1.6.0"
IMAGE_BYTES = 512 * 1024
GROUP = "temperature-sensors"
ROLLOUT_ID = "temperature-sensors-1-6-0"
# Wave 1 is 5 % (3 of the ~55 sensors of a 400-device demo fleet): fewer than min_finished,
# so the canaries pass or fail by the operator's eye at the manual gate, not by a ratio of 3.
# Wave 2 takes half the rest; the demo profile fails about one device in eight at once, which
# crosses 10 % as soon as 5 have finished. tests/firmware/test_demo.py holds this.
ROLLOUT = {
    "rollout_id": ROLLOUT_ID,
    "description": "TS-200 firmware 1.6.0 to every temperature sensor, canaries first.",
    "targets": {"groups": [GROUP]},
    "waves": [
        {"selector": "percent", "percent": 5, "soak_minutes": 1, "gate": "manual"},
        {"selector": "percent", "percent": 50, "soak_minutes": 1},
        {"selector": "percent", "percent": 100},
    ],
    "failure_policy": {"threshold_percent": 10, "min_finished": 5, "action": "pause"},
    "deadlines": {"start_minutes": 10, "finish_minutes": 20},
    "health": {
        "online_minutes": 1,
        "bounds": {"field": "reported.errors", "op": "lt", "value": 10},
    },
}


def store_directory() -> Path:
    """Where the demo devices keep their keys and certificates (the simulator's store)."""
    return Path(settings.VAR_DIR) / "simulator" / "demo"


def simulated_devices() -> QuerySet[Device]:
    """The seeded devices that have talked to the portal and are in service: the simulator
    runs them (registered and provisioning ones stay waiting to be installed)."""
    return Device.objects.in_service().filter(
        device_id__startswith=DEMO_PREFIX, last_seen__isnull=False
    )


@dataclass
class Issued:
    issued: list[str] = field(default_factory=list)
    kept: int = 0
    retired: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def issue_certificates(directory: Path, *, actor: str = ACTOR) -> Issued:
    """A certificate for each simulated device whose certificate in `directory` is missing or
    not one of its live ones (a new database): key and CSR made here, as a factory would, signed
    in one batch, written with what the device is (device.json: type, hardware, firmware)."""
    store = Store(directory)
    devices = list(simulated_devices().order_by("device_id"))
    result = Issued(retired=retire(store, {d.device_id for d in devices}))
    live: dict[int, set[str]] = {}
    rows = DeviceCredential.objects.filter(device__in=devices, status=CredentialStatus.ACTIVE)
    for device_pk, fingerprint in rows.values_list("device_id", "fingerprint"):
        live.setdefault(device_pk, set()).add(fingerprint)
    missing = []
    for device in devices:
        held = store.current(device.device_id)
        if held is not None and held.certificate_id() in live.get(device.pk, set()):
            result.kept += 1
        else:
            missing.append((device, new_key()))
    pairs = [(device, csr_pem(key, device.device_id)) for device, key in missing]
    for (device, key), issued in zip(
        missing, credentials.issue_credentials(pairs, actor=actor), strict=True
    ):
        if isinstance(issued, DomainError):
            result.refused[device.device_id] = str(issued)
            continue
        store.save(device.device_id, key_pem(key), issued.credential_value)
        store.save_info(device.device_id, merge=False, **device_info(device))
        result.issued.append(device.device_id)
    return result


def retire(store: Store, simulated: set[str]) -> list[str]:
    """Remove the demo devices that are out of service now (decommissioned, or gone with an old
    database) from the store, so the simulator stops running them."""
    gone = [d for d in store.device_ids() if d.startswith(DEMO_PREFIX) and d not in simulated]
    for device_id in gone:
        shutil.rmtree(store.directory / device_id)
    return gone


def device_info(device: Device) -> dict[str, str]:
    info = {"device_type": device.device_type, "hardware_version": device.hardware_version}
    return info | ({"firmware_version": device.firmware_version} if device.firmware_version else {})


def add_firmware(*, actor: str = ACTOR) -> tuple[FirmwareVersion, bool]:
    """The signed 1.6.0 image for the TS-200 sensors (True: catalogued now)."""
    found = FirmwareVersion.objects.filter(device_type=DEVICE_TYPE, version=VERSION).first()
    if found is not None:
        return found, False
    artifact = catalog.Artifact(file=ContentFile(image(IMAGE_BYTES), name=f"ts-200-{VERSION}.bin"))
    firmware = catalog.add_version(
        device_type=DEVICE_TYPE,
        version=VERSION,
        artifact=artifact,
        actor=actor,
        hardware_versions=[HARDWARE_VERSION],
        release_notes="Demo image (manage.py seed_demo_rollout): faster sampling, fewer wake-ups.",
    )
    return firmware, True


def image(size: int) -> bytes:
    """Deterministic bytes standing in for an image (every run catalogues the same SHA-256)."""
    out, counter = bytearray(), 0
    while len(out) < size:
        out += hashlib.sha256(b"ts-200-" + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def add_rollout(firmware: FirmwareVersion, *, actor: str = ACTOR) -> tuple[Rollout, bool]:
    """The draft rollout of `firmware` to the temperature sensors (True: created now)."""
    found = Rollout.objects.filter(rollout_id=ROLLOUT_ID).first()
    if found is not None:
        return found, False
    if not DeviceGroup.objects.filter(name=GROUP).exists():
        groups.create_group(
            {
                "name": GROUP,
                "description": "Every TS-200 temperature sensor (dynamic).",
                "filters": {"field": "device_type", "op": "eq", "value": DEVICE_TYPE},
            },
            actor=actor,
        )
    fields = ROLLOUT | {"firmware": str(firmware.pk)}
    return rollouts.create_rollout(fields, actor=actor), True
