"""Where a benchmark's CPU goes: each process's CPU time over a run, from /proc (Linux).

The benchmarks share two cores with the broker, PostgreSQL, the load generator and whatever
else runs on the machine; a figure means little without knowing who used the cores meanwhile.
"""

import os
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far; 0 once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14, 15


def machine_seconds() -> tuple[float, float]:
    """CPU seconds every core of the machine has been busy so far, and those the hypervisor
    gave to other machines while this one wanted them (steal)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, steal = values[3] + values[4], values[7]  # idle + iowait; steal
    return (sum(values[:8]) - idle - steal) / TICKS, steal / TICKS


class Usage:
    """CPU used by named groups of processes between start() and stop(), in cores. A group may
    be a function giving its pids, asked at start() (processes that appear late: a
    connection's database backend)."""

    def __init__(self, groups: dict[str, list[int] | Callable[[], list[int]]]):
        self.pending = groups
        self.groups: dict[str, list[int]] = {}
        self.before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        used = {name: sum(process_seconds(p) for p in pids) for name, pids in self.groups.items()}
        used["(whole machine)"], used["stolen by the hypervisor"] = machine_seconds()
        return used

    def start(self) -> None:
        self.groups = {
            name: pids() if callable(pids) else pids for name, pids in self.pending.items()
        }
        self.before = self._now()

    def stop(self, seconds: float) -> dict[str, float]:
        after = self._now()
        cores = {name: (after[name] - self.before[name]) / seconds for name in after}
        stolen = cores.pop("stolen by the hypervisor")
        ours = sum(cores.values()) - cores["(whole machine)"]
        cores["everything else on the machine"] = max(0.0, cores.pop("(whole machine)") - ours)
        cores["stolen by the hypervisor"] = stolen
        return cores
