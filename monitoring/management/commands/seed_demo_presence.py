"""Seed presence for the demo fleet (`make run`, after `seed_demo`): devices the demo shows as
heard from lately get an online presence row, the rest of the in-service devices an offline one,
so the online figures and the `online` filter have something to show before any device connects.
The heartbeat sweep then ages them as it would real ones. Each demo device type also gets health
settings reading `battery` and `signal` from the reported state, as the simulated devices report
them (the device page and the health API show them); settings already there are left alone."""

from django.core.management.base import BaseCommand
from django.db import connection

from devices.choices import DeviceStatus
from devices.models import Device
from monitoring.models import DeviceTypeHealth
from monitoring.presence.choices import PresenceReason

SEED_SQL = """
INSERT INTO monitoring_presence (device_id, online, changed_at, connection, connection_started,
    connections, connected_at, disconnected_at, reason)
SELECT id, last_seen >= now() - make_interval(secs => %(window)s), last_seen, '', last_seen,
       1, last_seen, NULL,
       CASE WHEN last_seen >= now() - make_interval(secs => %(window)s)
            THEN %(online)s ELSE %(offline)s END
FROM devices_device
WHERE last_seen IS NOT NULL AND status <> %(decommissioned)s
ON CONFLICT (device_id) DO NOTHING
"""


class Command(BaseCommand):
    help = "Seed presence rows for the demo fleet from its last_seen (run after seed_demo)."

    def handle(self, *args, **options):
        from django.conf import settings

        with connection.cursor() as cursor:
            cursor.execute(
                SEED_SQL,
                {
                    "window": settings.PRESENCE_HEARTBEAT_SECONDS,
                    "online": PresenceReason.CONNECTED.value,
                    "offline": PresenceReason.HEARTBEAT_MISSED.value,
                    "decommissioned": DeviceStatus.DECOMMISSIONED.value,
                },
            )
            self.stdout.write(f"Seeded presence for {cursor.rowcount} devices.")
        types = Device.objects.filter(device_id__startswith="demo-").values_list(
            "device_type", flat=True
        )
        for device_type in sorted(set(types)):
            DeviceTypeHealth.objects.get_or_create(
                device_type=device_type,
                defaults={
                    "heartbeat_seconds": DeviceTypeHealth.default_heartbeat(),
                    "battery_key": "battery",
                    "signal_key": "signal",
                },
            )
