"""The connections bench's helpers (bench/connection_load.py) and the open-files limit the broker
and the load generator raise (fleetportal/limits.py)."""

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bench import connection_load
from fleetportal import limits


def test_reads_the_ephemeral_port_range_the_kernel_gives():
    assert connection_load.ephemeral_ports("32768\t60999\n") == 28_232


def test_one_source_address_is_enough_for_a_small_fleet():
    assert connection_load.source_addresses(5_000, 28_232) == ["127.0.0.2"]


def test_fifty_thousand_devices_spread_over_enough_source_addresses():
    addresses = connection_load.source_addresses(50_000, 28_232)
    assert addresses == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    per_address = [0] * len(addresses)
    for index in range(50_000):
        per_address[addresses.index(connection_load.source_address(index, addresses))] += 1
    # Each address stays well inside its ~28k ephemeral ports.
    assert max(per_address) - min(per_address) <= 1
    assert max(per_address) < 0.8 * 28_232


def test_refuses_more_connections_than_loopback_addresses_can_carry():
    with pytest.raises(ValueError, match="source addresses"):
        connection_load.source_addresses(10_000_000, 28_232)


def test_load_generator_uses_a_process_per_open_files_limit_and_at_least_two():
    assert connection_load.processes_needed(5_000, 20_000) == 2
    assert connection_load.processes_needed(50_000, 20_000) == 3
    assert connection_load.processes_needed(50_000, 1_048_576) == 2
    with pytest.raises(ValueError, match="no room"):
        connection_load.processes_needed(10, 100)


def test_updates_are_spread_evenly_over_the_period():
    offsets = [connection_load.update_offset(index, 50_000, 300) for index in range(50_000)]
    assert offsets[0] == 0
    assert max(offsets) < 300
    # 50,000 devices every 300 s: about 167 updates in any second.
    in_first_second = sum(1 for offset in offsets if offset < 1)
    assert in_first_second == 167


def test_a_run_stopped_below_its_target_still_spreads_updates_over_the_period():
    # Three processes asked for 16,667 devices each connected 100, 120 and 80 (a broker at its
    # limit): their updates must cover the whole period, not three slices of it.
    connected = {0: 100, 1: 120, 2: 80}
    offsets = []
    first = 0
    for process, count in connected.items():
        devices = {process * 16_667 + n: f"device-{process}-{n}" for n in range(count)}
        offsets += [o for o, _ in connection_load.update_schedule(devices, first, 300, 300)]
        first += count
    assert sorted(offsets) == [float(n) for n in range(300)]


def test_open_files_target_goes_up_to_the_hard_limit_and_never_down():
    assert limits.open_files_target(1024, 524_288) == 524_288
    assert limits.open_files_target(1024, 524_288, wanted=60_000) == 60_000
    assert limits.open_files_target(1024, 20_000, wanted=60_000) == 20_000
    assert limits.open_files_target(4096, 20_000, wanted=2_000) == 4096


def test_raising_the_limit_reaches_a_child_process():
    # In a child, so this test process keeps its own limit: lower the soft limit, raise it,
    # and check what a process it starts (as Mosquitto from runbroker) inherits.
    script = (
        "import resource, subprocess, sys\n"
        "from fleetportal import limits\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "limits.raise_open_files_limit()\n"
        "child = 'import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])'\n"
        "print(subprocess.check_output([sys.executable, '-c', child], text=True).strip(), hard)\n"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    inherited, hard = result.stdout.split()
    assert int(inherited) == int(hard)
    assert int(hard) == resource.getrlimit(resource.RLIMIT_NOFILE)[1]
