"""`aether-es` commands as child processes a test can crash and start again.

Output goes to a log file per start, not a pipe: a chatty process (reconnect warnings after a fault) would
block on a pipe nobody reads, and the file is there to read when a test fails. A child runs in that log
folder, the test's own: a role started without `--state-dir` keeps its default `.aether` there, never in the
checkout, where tests running beside it would find and share it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

COMMAND = ("-m", "aether_es.cli.main")
"""What a child runs by default (after the interpreter): `aether-es`; a test may run a script of its own."""


def alive(pid: int) -> bool:
    """Whether process `pid` runs: a zombie (gone, only not yet reaped by its parent) does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `condition` came true within `timeout` seconds (checked every 50 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class Child:
    """One role (`serve`, a worker) played by successive `aether-es` processes with the same arguments."""

    def __init__(self, name: str, args: Sequence[str], logs: Path, program: Sequence[str] = COMMAND) -> None:
        self.name = name
        self.args = list(args)
        self.logs = logs
        self.program = list(program)
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.logs / f"{self.name}-{self.starts}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self, ready: str, timeout: float = 30) -> str:
        """Start a new process; returns its first output line containing `ready` once it is written."""
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.program, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.logs,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = next((x for x in self.log_path.read_text(errors="replace").splitlines() if ready in x), None)
            if line is not None:
                return line
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not say {ready!r}:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it outlasts `timeout`; returns the exit code (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        """The last lines of the current process's output, for failure messages."""
        if not self.log_path.exists():
            return f"({self.name}: no output)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name}\n" + "\n".join(text)
