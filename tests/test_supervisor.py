"""bin/run's supervisor: a piece that dies is restarted with bounded backoff, and said so.

The tests source bin/supervise.sh in a real bash, as bin/run does, and kill real processes.
"""

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def supervised(script: str, **env) -> subprocess.Popen:
    """bash sourcing bin/supervise.sh, then running SCRIPT; its own process group."""
    program = (
        "set -euo pipefail\nsource bin/supervise.sh\n"
        "trap stop_all EXIT\ntrap 'exit 130' INT\ntrap 'exit 143' TERM\n"  # as bin/run
        f"{script}\n"
    )
    return subprocess.Popen(  # noqa: S603
        ["/bin/bash", "-c", program],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(process: subprocess.Popen, pattern: str, timeout: float = 20) -> list[str]:
    """Lines read up to and including the first that matches PATTERN."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r} in {lines}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_piece_is_restarted_and_the_console_says_so():
    run = supervised("start bridge sleep 1000\nwait")
    try:
        first = int(re.search(r"pid (\d+)", read_until(run, r"started bridge")[-1]).group(1))
        os.kill(first, signal.SIGKILL)
        said = read_until(run, r"exited")[-1]
        assert said == "run: bridge exited (status 137); restarting in 1 s"
        second = int(re.search(r"pid (\d+)", read_until(run, r"started bridge")[-1]).group(1))
        assert second != first and alive(second)
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(20)


def test_restarts_back_off_up_to_the_ceiling_and_reset_after_a_stable_run():
    run = supervised(
        "start flaky bash -c 'exit 3'\nwait", RESTART_MAX_DELAY="4", RESTART_STABLE_SECONDS="60"
    )
    try:
        delays = []
        while len(delays) < 4:
            line = read_until(run, r"restarting in")[-1]
            delays.append(int(re.search(r"restarting in (\d+) s", line).group(1)))
        assert "status 3" in line
        assert delays == [1, 2, 4, 4]
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(30)


def test_stopping_ends_every_piece_even_one_that_ignores_sigterm():
    stubborn = """bash -c 'trap "" TERM; echo stubborn ready; exec sleep 1000'"""
    run = supervised(f"start calm sleep 1000\nstart stubborn {stubborn}\nwait")
    lines = read_until(run, r"stubborn ready")
    lines += [] if sum("started" in line for line in lines) == 2 else read_until(run, r"started")
    pids = [int(m.group(1)) for line in lines if (m := re.search(r"started \w+ \(pid (\d+)", line))]
    assert len(pids) == 2
    os.kill(run.pid, signal.SIGTERM)
    output = run.communicate(timeout=30)[0]
    assert "ignored SIGTERM; killing it" in output
    assert "restarting" not in output
    assert not any(alive(pid) for pid in pids)


def test_bin_run_supervises_every_piece_it_starts():
    source = (ROOT / "bin" / "run").read_text()
    assert "source bin/supervise.sh" in source
    # Conditional pieces too (sqs, with an AWS queue); the simulator is make run's demo only.
    pieces = set(re.findall(r"^\s*start (\w+) ", source, re.M)) - {"simulator"}
    assert {"mosquitto", "bridge", "outbox", "worker", "beat", "web", "sqs"} <= pieces
    units = {
        p.stem.removeprefix("fleetportal-") for p in (ROOT / "deploy/systemd").glob("*.service")
    }
    assert pieces == units == set(procfile_lines())
    for unit in (ROOT / "deploy/systemd").glob("*.service"):
        assert "Restart=always" in unit.read_text()


def procfile_lines() -> dict[str, str]:
    text = (ROOT / "deploy/Procfile").read_text()
    return dict(re.findall(r"^(\w+): (.+)$", text, re.M))


def without_aws_queue(**env) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "FLEETPORTAL_AWS_QUEUE_URL"} | env


def test_the_procfiles_sqs_line_idles_without_an_aws_queue(tmp_path):
    # A fake .venv/bin/python in the runner's directory shows what the line would start.
    python = tmp_path / ".venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "started: $*"\n')
    python.chmod(0o755)
    line = procfile_lines()["sqs"]

    def run(**env) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 (the Procfile's own line, as honcho runs it)
            ["/bin/sh", "-c", line],
            cwd=tmp_path,
            env=without_aws_queue(**env),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    idle = run()
    try:
        assert "FLEETPORTAL_AWS_QUEUE_URL is not set" in idle.stdout.readline()
        time.sleep(0.5)
        assert idle.poll() is None  # still there: a runner that stops all when one ends keeps on
    finally:
        os.killpg(idle.pid, signal.SIGTERM)
        idle.wait(timeout=5)
    with_queue = run(FLEETPORTAL_AWS_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/1/reports")
    assert with_queue.communicate(timeout=10)[0] == "started: manage.py runsqs\n"


def test_the_sqs_unit_is_skipped_not_failed_without_an_aws_queue():
    unit = (ROOT / "deploy/systemd/fleetportal-sqs.service").read_text()
    condition = re.search(r"^ExecCondition=(.+)$", unit, re.M).group(1)
    # systemd turns `$$` into `$` and splits the line as a shell would (systemd.service(5)).
    command = shlex.split(condition.replace("$$", "$"))
    # Exit 1-254: the unit is skipped, neither failed nor restarted; 0: it starts.
    assert subprocess.run(command, env=without_aws_queue()).returncode == 1  # noqa: S603
    queue = without_aws_queue(FLEETPORTAL_AWS_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/1/r")
    assert subprocess.run(command, env=queue).returncode == 0  # noqa: S603
    assert "ExecStart=/opt/fleetportal/.venv/bin/python manage.py runsqs" in unit
    assert "fleetportal-sqs.service" in (ROOT / "deploy/systemd/fleetportal.target").read_text()
