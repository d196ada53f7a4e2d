"""last_seen without a database write per message: at most one UPDATE per device per 30 s.

A router.on_device_message hook (registered with the presence handlers) keeps, in process
memory, when each device's last_seen was last written; messages inside the window only read the
dict. The time is remembered once the bridge's transaction commits, so a rolled-back write is
retried by the next message. Each bridge process has its own cache: with N bridges a device is
written at most N times per window (a device's messages go to one bridge, so usually once).
"""

import time

from django.db import transaction

from devices.choices import DeviceStatus
from devices.models import Device

WINDOW_SECONDS = 30.0
_written: dict[str, float] = {}
clock = time.monotonic


def touch(message) -> None:
    """Record that `message.device_id` was seen at `message.received_at` (coalesced)."""
    device_id = message.device_id
    now = clock()
    last = _written.get(device_id)
    if last is not None and now - last < WINDOW_SECONDS:
        return
    Device.objects.filter(device_id=device_id).exclude(status=DeviceStatus.DECOMMISSIONED).update(
        last_seen=message.received_at
    )
    transaction.on_commit(lambda: _written.__setitem__(device_id, now))


def forget() -> None:
    _written.clear()
