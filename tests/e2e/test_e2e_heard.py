"""Faults are heard, not silent: `serve` and `worker` say on stderr (at the default log level) what went
wrong, repair what they own, and stop on time when they cannot; the happy path says nothing at WARNING."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.cli import EXAMPLE, ROOT, aether

from aether_es.adapters.nats.server import EmbeddedNatsServer

DEADLINE = 30.0


class Process:
    """An `aether-es` command with stdout and stderr in files (a pipe nobody reads could block it)."""

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.out = tmp / f"{name}.out"
        self.err = tmp / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aether_es.cli.main", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_for(self, what: Callable[[], bool], timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out; stdout:\n{self.stdout()}\nstderr:\n{self.stderr()}")

    def said(self, text: str, timeout: float = DEADLINE) -> None:
        self.wait_for(lambda: text in self.stdout() + self.stderr(), timeout)

    def exited(self, timeout: float = DEADLINE) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running; stderr:\n{self.stderr()}") from None

    def children(self) -> list[int]:
        """Its child processes, whichever of its threads started them (the server comes from a spawner thread)."""
        pids: list[int] = []
        for path in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids.extend(int(pid) for pid in path.read_text().split())
        return pids

    def stop(self) -> None:
        """SIGKILL what is left of it, its nats-server child included."""
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if " WARNING " in line]


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def serve(tmp: Path, processes: list[Process], *args: str) -> Process:
    served = Process(tmp, f"serve-{len(processes)}", "serve", *args)
    processes.append(served)
    served.said("serving on")
    return served


def url_of(served: Process) -> str:
    return served.stdout().split("serving on ", 1)[1].split(" ", 1)[0]


def test_a_workflow_run_logs_nothing_at_warning(tmp_path: Path) -> None:
    result = aether("run", str(EXAMPLE), "--state-dir", str(tmp_path / ".aether"))
    assert result.returncode == 0, result.stderr
    assert warnings(result.stderr) == [], result.stderr


def test_serve_restarts_its_killed_nats_server_and_keeps_serving(tmp_path: Path, processes: list[Process]) -> None:
    served = serve(tmp_path, processes, "--state-dir", str(tmp_path / ".aether"), "--workers", "2")
    (child,) = [pid for pid in served.children() if b"nats-server" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(child, signal.SIGKILL)
    served.said("killed by signal 9")
    served.said("nats-server restarted")
    line = next(x for x in warnings(served.stderr()) if "killed by signal 9" in x)
    assert "nats-server.log" in line  # names where to look
    assert served.process.poll() is None
    done = aether("submit", str(EXAMPLE), "--wait", "--nats", url_of(served))
    assert done.returncode == 0, done.stdout + done.stderr
    assert any("reconnected to" in x for x in warnings(served.stderr()))


def test_serve_stops_on_sigterm_even_with_its_nats_server_gone(tmp_path: Path, processes: list[Process]) -> None:
    with EmbeddedNatsServer(tmp_path / "external") as server:
        served = serve(
            tmp_path, processes, "--nats", server.url, "--state-dir", str(tmp_path / ".aether"), "--drain-timeout", "1"
        )
        server.kill()
        served.said("disconnected from")
        served.process.send_signal(signal.SIGTERM)
        assert served.exited() in (0, 1)
    assert "stopped" in served.stdout()
    assert warnings(served.stderr())


def test_a_second_sigterm_stops_serve_at_once(tmp_path: Path, processes: list[Process]) -> None:
    with EmbeddedNatsServer(tmp_path / "external") as server:
        served = serve(tmp_path, processes, "--nats", server.url, "--state-dir", str(tmp_path / ".aether"))
        server.kill()
        served.said("disconnected from")
        served.process.send_signal(signal.SIGTERM)
        served.said("stopping ...")
        served.process.send_signal(signal.SIGTERM)
        assert served.exited() == 128 + signal.SIGTERM
    assert "second SIGTERM" in served.stderr()
    assert "Traceback" not in served.stderr()


def warnings_after_losing_nats(tmp_path: Path, processes: list[Process], ready: str, *command: str) -> list[str]:
    """Start `command` against a server of the test's own, kill that server once it says `ready`, and check it
    exits 1 having said that it lost the connection; its WARNING lines."""
    with EmbeddedNatsServer(tmp_path / "external") as server:
        process = Process(tmp_path, command[0], *command, "--nats", server.url, "--reconnect-timeout", "1")
        processes.append(process)
        process.said(ready)
        server.kill()
        assert process.exited() == 1
    lines = warnings(process.stderr())
    assert any("disconnected from" in x and server.url in x for x in lines), lines
    return lines


def test_worker_exits_1_when_nats_is_gone_longer_than_its_reconnect_timeout(
    tmp_path: Path, processes: list[Process]
) -> None:
    command = ("worker", "--executors", "echo", "--drain-timeout", "1")
    lines = warnings_after_losing_nats(tmp_path, processes, "serving echo", *command)
    assert any("no connection to" in x and "reconnect timeout 1 s" in x for x in lines), lines


def test_run_exits_1_when_nats_is_gone_longer_than_its_reconnect_timeout(
    tmp_path: Path, processes: list[Process]
) -> None:
    sleeping = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "sleeps"},
        "spec": {
            "entrypoint": "nap",
            "templates": [{"task": {"name": "nap", "executor": {"type": "sleep", "config": {"duration": "2m"}}}}],
        },
    }
    document = tmp_path / "sleeps.json"
    document.write_text(json.dumps(sleeping))
    lines = warnings_after_losing_nats(tmp_path, processes, "submitted", "run", str(document))
    assert any("run: " in x and "giving up" in x for x in lines), lines


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs, so a test can fill it; skipped where mounting is not allowed (not root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    tried = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {tried.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write `path` until the filesystem is full."""
    chunk = b"\0" * (1024 * 1024)
    with contextlib.suppress(OSError), path.open("wb") as handle:
        while True:
            handle.write(chunk)
            handle.flush()


def test_a_full_disk_is_reported_once_and_repaired_when_space_is_back(
    tmp_path: Path, small_disk: Path, processes: list[Process]
) -> None:
    served = serve(tmp_path, processes, "--state-dir", str(small_disk / ".aether"), "--workers", "2")
    url = url_of(served)
    filler = small_disk / "filler"
    fill(filler)
    stuck = Process(tmp_path, "submit-full", "submit", str(EXAMPLE), "--nats", url)
    processes.append(stuck)
    served.said("cannot write its store")
    served.said("waiting for free space")
    filler.unlink()
    served.said("nats-server restarted")
    done = aether("submit", str(EXAMPLE), "--wait", "--nats", url)
    assert done.returncode == 0, done.stdout + done.stderr
    store_lines = [x for x in warnings(served.stderr()) if "cannot write its store" in x]
    assert 1 <= len(store_lines) <= 2, store_lines  # throttled, not a line per failed write
    capped = [x for x in warnings(served.stderr()) if "AETHER_LOGS holds at most" in x]
    assert len(capped) == 1, capped  # the logs stream's cap did not fit the small disk: halved, said once
