"""What the simulated fleet did, counted as it happens and printed as a summary at the end."""

import time
from collections import Counter
from dataclasses import dataclass, field

MAX_ERRORS_KEPT = 20


@dataclass
class Stats:
    """Counters the devices add to (all on the one event loop's thread; readers elsewhere only
    read). `count` holds the plain counters, `jobs` the jobs by outcome, `faults` the faults
    injected by knob; `errors` the problems by kind, with the latest messages in `last_errors`."""

    started: float = field(default_factory=time.monotonic)
    count: Counter[str] = field(default_factory=Counter)
    jobs: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    last_errors: list[str] = field(default_factory=list)
    connected_devices: set[str] = field(default_factory=set)

    def add(self, name: str, n: int = 1) -> None:
        self.count[name] += n

    def job(self, outcome: str) -> None:
        self.jobs[outcome] += 1

    def fault(self, knob: str) -> None:
        self.faults[knob] += 1

    def error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        self.last_errors.append(message)
        del self.last_errors[:-MAX_ERRORS_KEPT]

    def connected(self, device_id: str) -> None:
        self.connected_devices.add(device_id)
        self.count["connections"] += 1

    def summary(self, devices: int) -> str:
        c = self.count
        lines = [
            f"Simulated {devices} device(s) for {time.monotonic() - self.started:.0f} s.",
            f"  connected: {len(self.connected_devices)} device(s), {c['connections']} "
            f"connection(s), {c['reconnects']} reconnect(s) after a lost link",
            f"  provisioned by claim: {c['provisioned']} (certificates on disk already: "
            f"{c['identities_loaded']})",
            f"  shadow reports: {c['reports']}; telemetry messages: {c['telemetry']}",
            f"  desired changes applied: {c['desired_applied']}; configuration changes "
            f"applied: {c['config_applied']}",
            "  jobs: " + _counts(self.jobs),
            f"  downloads: {c['downloads']} complete, {c['downloads_interrupted']} interrupted, "
            f"{c['downloads_resumed']} resumed with Range, {c['downloads_busy']} told to come "
            "back later (503)",
            f"  certificates rotated: {c['rotations']}; went offline and returned: "
            f"{c['offline_returns']}",
            f"  malformed messages sent: {c['malformed_sent']}; rejections received: "
            f"{c['rejections']}",
            "  faults injected: " + _counts(self.faults),
            "  errors: " + _counts(self.errors),
        ]
        lines += [f"    {message}" for message in self.last_errors[-5:]]
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{name} {n}" for name, n in sorted(counter.items()))
