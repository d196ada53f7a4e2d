"""last_seen without a database write per message: at most one UPDATE per device per 30 s.

A router.on_device_message hook (registered with the presence handlers) keeps, in process
memory, when each device's last_seen was last written; messages inside the window only read the
dict. The time is remembered once the bridge's transaction commits, so a rolled-back write is
retried by the next message. Each bridge process has its own cache: with N bridges a device is
written at most N times per window (a device's messages go to one bridge, so usually once).
"""

import time
from datetime import datetime

from django.db import transaction

from devices.choices import DeviceStatus
from devices.models import Device

WINDOW_SECONDS = 30.0
_written: dict[str, float] = {}
clock = time.monotonic


def touch(message) -> None:
    """Record that `message.device_id` was seen at `message.received_at` (coalesced)."""
    seen(message.device_id, message.received_at)


def seen(device_id: str, at: datetime, ip_address: str | None = None) -> None:
    """Record a sign of life (an MQTT message, an HTTP device API request), coalesced.

    Mosquitto does not tell the bridge a client's address, so only the HTTP device API passes
    `ip_address`.
    """
    now = clock()
    last = _written.get(device_id)
    if last is not None and now - last < WINDOW_SECONDS:
        return
    changes = (
        {"last_seen": at}
        if ip_address is None
        else {"last_seen": at, "last_ip_address": ip_address}
    )
    Device.objects.filter(device_id=device_id).exclude(status=DeviceStatus.DECOMMISSIONED).update(
        **changes
    )
    transaction.on_commit(lambda: _written.__setitem__(device_id, now))


def forget() -> None:
    _written.clear()
