"""The heartbeat sweep: online devices silent past their type's heartbeat go offline.

For devices that vanish without a disconnect line (the log is QoS 0: lost while no bridge runs)
and without a will. One statement for the whole fleet: the UPDATE … FROM … RETURNING marks them
offline and the INSERT in the same statement writes their device_offline events. It starts
from devices whose last_seen is older than the shortest heartbeat (device_last_seen_idx: an
index range over the silent devices, not a scan of the online ones) and probes each one's
presence row by its key.
"""

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from devices.models import Device, DeviceEvent
from monitoring.models.presence import DeviceTypeHealth, Presence
from monitoring.presence.choices import OFFLINE_EVENT, PresenceReason

SWEEP_SQL = f"""
WITH swept AS (
    UPDATE {Presence._meta.db_table} AS p
    SET online = false, changed_at = %(now)s, reason = %(reason)s
    FROM {Device._meta.db_table} AS d
    LEFT JOIN {DeviceTypeHealth._meta.db_table} AS h ON h.device_type = d.device_type
    WHERE p.device_id = d.id AND p.online
      AND d.last_seen < %(earliest)s
      AND d.last_seen < %(now)s - make_interval(secs => COALESCE(h.heartbeat_seconds, %(default)s))
      AND (p.connected_at IS NULL
           OR p.connected_at < %(now)s
              - make_interval(secs => COALESCE(h.heartbeat_seconds, %(default)s)))
    RETURNING p.device_id, p.connection
)
INSERT INTO {DeviceEvent._meta.db_table} (device_id, event_type, event_data, actor, created_at)
SELECT device_id, %(event)s,
       jsonb_build_object('reason', %(reason)s::text, 'connection', connection), 'system', %(now)s
FROM swept
RETURNING device_id
"""  # noqa: S608 (table names from the models, values as parameters)


def sweep_heartbeats(now: datetime | None = None) -> list:
    """Mark offline every online device silent past its heartbeat; the pks of those marked."""
    now = now or timezone.now()
    default = settings.PRESENCE_HEARTBEAT_SECONDS
    shortest = min([default, *DeviceTypeHealth.objects.values_list("heartbeat_seconds", flat=True)])
    params = {
        "now": now,
        "earliest": now - timezone.timedelta(seconds=shortest),
        "default": default,
        "reason": PresenceReason.HEARTBEAT_MISSED.value,
        "event": OFFLINE_EVENT,
    }
    with connection.cursor() as cursor:
        cursor.execute(SWEEP_SQL, params)
        return [row[0] for row in cursor.fetchall()]
