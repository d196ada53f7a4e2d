"""Seed a demo fleet for `make run`: a few groups and devices in every lifecycle status.

Devices are registered and moved through the real services, so each one's timeline reads like a
real device's. Every device's attributes derive from its number alone, so running the command
again adds nothing, and a larger --devices adds only the missing ones.
"""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from devices import services
from devices.choices import DeviceStatus as S
from devices.models import Device, DeviceGroup

ACTOR = "system"
REASON = "Demo fleet (manage.py seed_demo)"

# name: (description, site, latitude, longitude)
GROUPS = {
    "warehouse-berlin": ("Gateways and sensors in the Berlin warehouse.", "berlin", 52.52, 13.40),
    "warehouse-lyon": ("Gateways and sensors in the Lyon warehouse.", "lyon", 45.76, 4.84),
    "field-sensors": ("Battery-powered trackers and meters in the field.", "field", 48.14, 11.58),
}

# device_type, manufacturer, model, firmware versions in the field, hardware version, groups
PRODUCTS = [
    ("temperature-sensor", "Acme Devices", "TS-200", ["1.4.2", "1.5.0"], "rev-b",
     ["warehouse-berlin", "warehouse-lyon"]),
    ("gateway", "Northwind IoT", "GW-10", ["2.0.1", "2.1.0"], "rev-a",
     ["warehouse-berlin", "warehouse-lyon"]),
    ("smart-meter", "Contoso Metering", "SM-3", ["3.2.0", "3.3.1"], "rev-c", ["field-sensors"]),
    ("tracker", "Acme Devices", "TRK-1", ["1.1.0", "1.2.3"], "rev-d", ["field-sensors"]),
    ("camera", "Fabrikam Vision", "CAM-4K", ["0.9.8", "1.0.0"], "rev-a",
     ["warehouse-berlin", None]),
]  # fmt: skip

# The statuses a device passes through after `registered`, and how many in 100 take that path.
PATHS = [
    ([], 10),
    ([S.PROVISIONING], 10),
    ([S.PROVISIONING, S.ACTIVE], 60),
    ([S.PROVISIONING, S.ACTIVE, S.MAINTENANCE], 10),
    ([S.PROVISIONING, S.ACTIVE, S.DECOMMISSIONED], 6),
    ([S.DECOMMISSIONED], 4),
]


class Command(BaseCommand):
    help = "Seed a demo fleet (groups and devices in every lifecycle status). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, default=200, help="Fleet size (default 200).")

    @transaction.atomic
    def handle(self, *args, devices, **options):
        groups = {name: self._group(name, spec[0]) for name, spec in GROUPS.items()}
        wanted = {device_id(n): n for n in range(1, devices + 1)}
        existing = set(
            Device.objects.filter(device_id__in=wanted).values_list("device_id", flat=True)
        )
        paths = {}
        for did, n in wanted.items():
            if did not in existing:
                rng = random.Random(n)  # noqa: S311  (demo data, not secrets)
                path = rng.choices([p for p, _ in PATHS], [w for _, w in PATHS])[0]
                fields = demo_fields(n, rng, path, groups)
                paths[services.register_device(fields, actor=ACTOR)] = path
        self._walk(paths)
        self.stdout.write(
            f"Demo fleet: {len(paths)} devices added, {len(existing)} already there, "
            f"{len(groups)} groups."
        )

    def _group(self, name: str, description: str) -> DeviceGroup:
        group, _ = DeviceGroup.objects.get_or_create(
            name=name, defaults={"description": description}
        )
        return group

    def _walk(self, paths: dict[Device, list[str]]) -> None:
        """Move the new devices along their paths, one bulk transition per step and target."""
        for step in range(max((len(p) for p in paths.values()), default=0)):
            for target in S.values:
                batch = [d for d, p in paths.items() if len(p) > step and p[step] == target]
                if batch:
                    services.transition_devices(batch, target, actor=ACTOR, reason=REASON)


def device_id(n: int) -> str:
    return f"demo-{n:05d}"


def demo_fields(n: int, rng: random.Random, path: list[str], groups: dict) -> dict:
    device_type, manufacturer, model, firmwares, hardware, group_names = rng.choice(PRODUCTS)
    group_name = rng.choice(group_names)
    site, lat, lon = GROUPS[group_name][1:] if group_name else ("lab", 50.11, 8.68)
    fields = {
        "device_id": device_id(n),
        "device_name": f"{model} #{n}",
        "device_type": device_type,
        "manufacturer": manufacturer,
        "model": model,
        "serial_number": f"{model.replace('-', '')}-{n:06d}",
        "firmware_version": rng.choice(firmwares),
        "hardware_version": hardware,
        "group": groups.get(group_name),
        "location": {
            "site": site,
            "lat": round(lat + rng.uniform(-0.05, 0.05), 5),
            "lon": round(lon + rng.uniform(-0.05, 0.05), 5),
        },
        "metadata": {"site": site, "owner": rng.choice(["logistics", "facilities", "research"])},
    }
    if device_type in ("tracker", "temperature-sensor"):
        fields["metadata"]["battery_percent"] = rng.randint(5, 100)
    if S.ACTIVE in path:
        # Devices that have been in service have talked to us: most of the active ones recently.
        online = path[-1] == S.ACTIVE and rng.random() < 0.75
        if online:
            ago = timedelta(seconds=rng.randint(5, 240))
        else:
            ago = timedelta(hours=rng.randint(1, 24 * 14))
        fields["last_seen"] = timezone.now() - ago
        fields["last_ip_address"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return fields
