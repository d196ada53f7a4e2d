"""Seed demo configuration for `make run` (after `seed_demo`): values on the demo groups, a
dynamic group with a higher priority, and one device override — through the real service, so
the demo devices' `config` shadows hold them. Idempotent: unchanged values are left alone."""

from django.core.management.base import BaseCommand

from devices.models import Device, DeviceGroup
from shadows.configuration import services

ACTOR = "system"

# group: {key: value}
GROUP_VALUES = {
    "warehouse-berlin": {"telemetry_interval": 60, "log_level": "warning"},
    "warehouse-lyon": {"telemetry_interval": 120, "log_level": "warning"},
    "field-sensors": {"telemetry_interval": 900, "power_save": True},
}
GATEWAYS = {"field": "device_type", "op": "eq", "value": "gateway"}


class Command(BaseCommand):
    help = "Seed demo configuration values on the demo groups (run after seed_demo)."

    def handle(self, *args, **options):
        for name, values in GROUP_VALUES.items():
            group = DeviceGroup.objects.filter(name=name).first()
            if group is None:
                continue
            for key, value in values.items():
                services.set_value(key, value, group=group, actor=ACTOR)
        gateways, _ = DeviceGroup.objects.get_or_create(
            name="gateways",
            defaults={"filters": GATEWAYS, "priority": 10, "description": "Every gateway."},
        )
        services.set_value("log_level", "info", group=gateways, actor=ACTOR)
        uplink = {"protocol": "mqtt", "keepalive": 60}
        services.set_value("uplink", uplink, group=gateways, actor=ACTOR)
        first = Device.objects.filter(device_id="demo-00001").first()
        if first is not None and not first.is_decommissioned:
            services.set_value("log_level", "debug", device=first, actor=ACTOR)
        self.stdout.write(f"Demo configuration: values on {len(GROUP_VALUES) + 1} groups.")
