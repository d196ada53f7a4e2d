"""Each device's inbound message rate, limited where messages arrive at the bridge.

One device flooding the broker must not delay everyone else's messages: the bridge handles
messages in arrival order, so 5,000 junk messages from one device sit in front of every other
device's next request. A token bucket per device (`rate` messages a second, up to `burst` at
once) decides on arrival, in paho's network thread, before a message is queued: a message over
the limit is acknowledged and dropped, as AWS IoT discards publishes beyond its per-connection
rate, and counted. The runner reports the counts per device every REPORT_SECONDS through the
router (devices records a `throttled` event), so an operator sees who was cut off and how much.
"""

import threading
import time
from collections.abc import Callable

REPORT_SECONDS = 10.0


class DeviceThrottle:
    """Token buckets keyed by device id; thread-safe (paho's thread admits, the runner reports)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("A throttle needs a positive rate and a burst of at least 1.")
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._buckets: dict[str, list[float]] = {}  # device_id -> [tokens, last refill]
        self._dropped: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, device_id: str, cost: int = 1) -> bool:
        """Take `cost` tokens for device_id (one per message; telemetry counts values); False
        (and `cost` counted as dropped) when its bucket holds fewer."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(device_id)
            if bucket is None:
                bucket = self._buckets[device_id] = [self.burst, now]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= cost:
                bucket[0] = tokens - cost
                return True
            bucket[0] = tokens
            self._dropped[device_id] = self._dropped.get(device_id, 0) + cost
            return False

    def take_report(self) -> dict[str, int]:
        """Messages dropped per device since the last report; forgets devices gone quiet."""
        now = self._clock()
        refill = self.burst / self.rate
        with self._lock:
            dropped, self._dropped = self._dropped, {}
            # A bucket that has had time to refill is the same as no bucket: keep memory to
            # the devices that are busy now, not every device ever seen.
            self._buckets = {
                device: bucket
                for device, bucket in self._buckets.items()
                if now - bucket[1] < refill
            }
        return dropped
