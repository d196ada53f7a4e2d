"""The open-files limit a process with many connections needs (Linux, RLIMIT_NOFILE).

Every device connection costs the broker one file descriptor, and the distributions' default
soft limit (1024) stops Mosquitto near a thousand devices with "Too many open files". An
unprivileged process may raise its soft limit up to its hard limit, which the init system sets
(systemd: LimitNOFILE=, deploy/systemd/fleetportal-mosquitto.service); `manage.py runbroker`
does so before it becomes Mosquitto. docs/connections.md lists the limits an operator sets.
"""

import resource

OPEN_FILES = resource.RLIMIT_NOFILE


def open_files_target(soft: int, hard: int, wanted: int | None = None) -> int:
    """The soft limit to set: `wanted` (or as many as allowed), never above the hard limit and
    never below the current soft limit."""
    ceiling = hard if hard != resource.RLIM_INFINITY else (wanted or soft)
    target = ceiling if wanted is None else min(wanted, ceiling)
    return max(soft, target)


def raise_open_files_limit(wanted: int | None = None) -> tuple[int, int]:
    """Raise this process's soft open-files limit to `wanted` or the hard limit; the children it
    starts inherit it. Returns the (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(OPEN_FILES)
    target = open_files_target(soft, hard, wanted)
    if target != soft:
        resource.setrlimit(OPEN_FILES, (target, hard))
    return resource.getrlimit(OPEN_FILES)
