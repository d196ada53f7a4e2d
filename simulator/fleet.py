"""A fleet of simulated devices on one event loop, and running one in a thread of its own.

    fleet = Fleet(env, profile, device_ids(count=500, prefix="sim"))
    stats = asyncio.run(fleet.run(seconds=600))   # or until fleet.stop()
    print(stats.summary(len(fleet.devices)))

Devices start spread over the profile's connect_spread_seconds (a fleet powering up, not a
thundering herd), claims at most `env.claims_at_once` at a time. `stop()` makes every device say
it is leaving (graceful offline presence, DISCONNECT) and waits a few seconds for them.
"""

import asyncio
import threading
from collections.abc import Iterable

from simulator.device import Device
from simulator.environment import Environment
from simulator.mqtt import LoopThread
from simulator.profiles import Profile
from simulator.stats import Stats

STOP_GRACE_SECONDS = 5.0


def device_ids(count: int, prefix: str = "sim") -> list[str]:
    """`<prefix>-00001` … : ids a fleet keeps from one run to the next (their certificates are
    found again in the store)."""
    return [f"{prefix}-{n:05d}" for n in range(1, count + 1)]


class Fleet:
    def __init__(
        self, env: Environment, profile: Profile, ids: Iterable[str], stats: Stats | None = None
    ):
        self.env = env
        self.profile = profile
        self.ids = list(ids)
        self.stats = stats or Stats()
        self.devices: list[Device] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.ready = threading.Event()  # set once the devices exist (for another thread)

    async def run(self, seconds: float | None = None) -> Stats:
        """Run until `seconds` passed or stop(); returns what the devices did."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        claims = asyncio.Semaphore(self.env.claims_at_once)
        self.devices = [
            Device(device_id, self.env, self.profile, self.stats, claims=claims)
            for device_id in self.ids
        ]
        spread = self.profile.timing.connect_spread_seconds
        tasks = [
            asyncio.create_task(self._start(device, spread * i / max(len(self.devices), 1)))
            for i, device in enumerate(self.devices)
        ]
        self.ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            for device in self.devices:
                device.stop()
            done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            jobs = [d.job_task for d in self.devices if d.job_task and not d.job_task.done()]
            for task in [*pending, *jobs]:
                task.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    self.stats.error("device", repr(task.exception()))
        return self.stats

    async def _start(self, device: Device, delay: float) -> None:
        if delay and await device._wait(delay):
            return
        await device.run()

    def stop(self) -> None:
        """Stop the fleet (from any thread)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def online(self) -> int:
        """Devices connected right now."""
        return sum(1 for d in self.devices if d.client is not None and d.client.is_open)

    def status_line(self) -> str:
        """One line for a console that shows the fleet while it runs."""
        c, jobs = self.stats.count, sum(self.stats.jobs.values())
        return (
            f"simulator: {self.online()}/{len(self.devices)} online, {c['reports']} reports, "
            f"{jobs} job(s) done, {sum(self.stats.errors.values())} error(s)"
        )

    def device(self, device_id: str) -> Device:
        return next(d for d in self.devices if d.device_id == device_id)


class FleetThread:
    """A fleet running on an event loop in a thread of its own, for a caller that is not async
    (a test, a bench): start(), look at `stats` while it runs, stop() for the final stats."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.thread = LoopThread(name="simulated-fleet")
        self.future = None

    @property
    def stats(self) -> Stats:
        return self.fleet.stats

    def start(self, seconds: float | None = None) -> "FleetThread":
        self.future = self.thread.submit(self.fleet.run(seconds))
        self.fleet.ready.wait(10)
        return self

    def call(self, function, *args):
        """Run function(*args) on the fleet's loop and return its result (to poke a device)."""

        async def call():
            return function(*args)

        return self.thread.call(call(), timeout=10)

    def stop(self, timeout: float = 30) -> Stats:
        self.fleet.stop()
        if self.future is not None:
            self.future.result(timeout)
        self.thread.stop()
        return self.fleet.stats
