"""The soak's processes: the portal's pieces under bin/supervise.sh, as bin/run starts them, and
their resident memory.

`Stack.start(pieces)` runs one bash that sources bin/supervise.sh and `start`s each piece (its
output to <logs>/<name>.log); the supervisor's own lines ("run: started bridge (pid 123)",
"run: bridge exited (status 137); restarting in 1 s") are read to know each piece's pid now.
`kill(name)` sends SIGKILL to a piece and waits for the supervisor to restart it.
"""

import os
import re
import shlex
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTED = re.compile(r"run: started (\S+) \(pid (\d+)\)")
EXITED = re.compile(r"run: (\S+) exited \(status (\d+)\)")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Stack:
    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.pids: dict[str, int] = {}
        self.exits: Counter[str] = Counter()
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.process: subprocess.Popen | None = None

    def start(self, pieces: list[tuple[str, list[str]]], timeout: float = 30) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        script = ["source bin/supervise.sh", "trap stop_all EXIT", "trap 'exit 143' TERM"]
        for name, command in pieces:
            log = shlex.quote(str(self.logs / f"{name}.log"))
            wrapped = ["sh", "-c", f'exec "$0" "$@" >>{log} 2>&1', *command]
            script.append(f"start {name} {shlex.join(wrapped)}")
        script.append("wait")
        self.process = subprocess.Popen(  # noqa: S603
            ["bash", "-c", "\n".join(script)],  # noqa: S607
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True, name="supervisor-lines").start()
        names = {name for name, _ in pieces}
        with self.changed:
            if not self.changed.wait_for(lambda: names <= set(self.pids), timeout):
                raise RuntimeError(f"not started: {sorted(names - set(self.pids))}")

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip()
            with self.changed:
                self.lines.append(line)
                if started := STARTED.search(line):
                    self.pids[started[1]] = int(started[2])
                elif exited := EXITED.search(line):
                    self.exits[exited[1]] += 1
                self.changed.notify_all()

    def kill(self, name: str, timeout: float = 30) -> tuple[int, int]:
        """SIGKILL the piece; returns (old pid, new pid) once the supervisor restarted it."""
        old = self.pids[name]
        os.kill(old, signal.SIGKILL)
        with self.changed:
            if not self.changed.wait_for(lambda: self.pids[name] != old, timeout):
                raise RuntimeError(f"{name} was not restarted within {timeout} s")
        return old, self.pids[name]

    def stop(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the EXIT trap stops every supervisor and its piece
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def rss(self, name: str) -> int:
        return tree_rss(self.pids[name])


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (a Celery worker's pool processes)."""
    children = _children()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            pages = int(Path(f"/proc/{current}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * PAGE
        todo += children.get(current, [])
    return total
