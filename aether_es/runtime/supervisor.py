"""Keeping a long-running command's NATS side working, or giving up on time so it exits 1 instead of hanging.

Every second it checks that the embedded nats-server child (when the process owns one) is alive and that the
connection has not been down longer than the reconnect timeout; every few seconds it asks JetStream for the
account info, a cheap request that fails once JetStream is disabled. It repairs what it owns: a dead
embedded server, or one whose store stopped taking writes (nats-server marks a stream that hit a full disk
as failed and answers no further write to it until restarted, even once space is back), is restarted on the
same port and store, and the clients reconnect. A bounded number of restarts a minute; beyond that it gives up.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from nats.js.errors import APIError, ServiceUnavailableError

from aether_es.adapters.nats.connection import DEFAULT_RECONNECT_TIMEOUT, LogThrottle, NatsConnection
from aether_es.adapters.nats.server import EmbeddedNatsServer

T = TypeVar("T")

log = logging.getLogger(__name__)

STORE_FAULTS = (
    "no space left on device",
    "disk quota exceeded",
    "critical write error",
    "insufficient resources",
    "out of resources",
    "jetstream is disabled",
)
"""Lowercase fragments of nats-server log errors meaning its store no longer takes writes."""

MIB = 1024 * 1024


class SupervisionFailed(Exception):
    """Something the supervisor cannot repair in time: the process should stop and exit 1."""


class RestartBudget:
    """At most `limit` restarts in any `window` seconds: a server that keeps dying is not restarted forever."""

    def __init__(self, limit: int = 3, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def spend(self) -> bool:
        """Take one restart if the budget allows it now."""
        now = time.monotonic()
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


def free_space_needed(path: Path) -> int:
    """Bytes that must be free on `path`'s filesystem before a store that filled it is worth restarting."""
    return min(64 * MIB, shutil.disk_usage(path).total // 10)


class Supervisor:
    """Watches one connection and, when given, the embedded nats-server it talks to; `run` until cancelled."""

    def __init__(
        self,
        connection: NatsConnection,
        server: EmbeddedNatsServer | None = None,
        *,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
        poll_interval: float = 1.0,
        health_interval: float = 5.0,
        budget: RestartBudget | None = None,
    ) -> None:
        self.connection = connection
        self.server = server
        self.reconnect_timeout = reconnect_timeout
        self.poll_interval = poll_interval
        self.health_interval = health_interval
        self.budget = budget if budget is not None else RestartBudget()
        self.restarts = 0
        self.store_fault: str | None = None
        """The server log line saying the store stopped taking writes, until a restart clears it."""
        self.jetstream_down: str | None = None
        """Why the last health check failed, until one succeeds; a disabled JetStream is also a store fault."""
        self._throttle = LogThrottle(log)
        self._log_offset = self._log_size()
        self._log_rest = b""
        self._next_health = 0.0

    async def run(self) -> None:
        """Check every `poll_interval` seconds; raises `SupervisionFailed` when it gives up."""
        while True:
            await self.check()
            await asyncio.sleep(self.poll_interval)

    async def check(self) -> None:
        """One round of checks and repairs."""
        await self._check_server()
        self._check_connection()
        self._scan_server_log()
        now = time.monotonic()
        if now >= self._next_health and self.connection.down_for == 0:
            self._next_health = now + self.health_interval
            await self._check_jetstream()
        await self._repair_store()

    # --- the embedded server ----------------------------------------------------------------------

    async def _check_server(self) -> None:
        server = self.server
        if server is None:
            return
        code = _exit_code(server)
        if code is None:
            return
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        log.warning("nats-server (port %d) %s; its log: %s", server.port, how, server.log_path)
        await self._restart("it exited")

    async def _restart(self, why: str) -> None:
        server = self.server
        assert server is not None
        if not self.budget.spend():
            raise SupervisionFailed(
                f"nats-server restarted {self.budget.limit} times within {self.budget.window:g} s and "
                f"{why} again; giving up (its log: {server.log_path})"
            )
        started = time.monotonic()
        try:
            await asyncio.to_thread(server.restart)
        except Exception as exc:
            log.warning("restarting nats-server failed: %s; trying again in %g s", exc, self.poll_interval)
            return
        self.restarts += 1
        self.store_fault = None
        self.jetstream_down = None
        self._log_offset, self._log_rest = self._log_size(), b""
        log.warning("nats-server restarted on %s in %.1f s (%s)", server.url, time.monotonic() - started, why)

    def _scan_server_log(self) -> None:
        """Read what the server logged since the last round, looking for store write failures."""
        server = self.server
        if server is None:
            return
        try:
            with open(server.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                chunk = handle.read(4 * MIB)
        except OSError:
            return
        self._log_offset += len(chunk)
        *lines, self._log_rest = (self._log_rest + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            lowered = line.lower()
            if ("[err]" in lowered or "[ftl]" in lowered) and any(fault in lowered for fault in STORE_FAULTS):
                self.store_fault = line
                self._throttle.warning(
                    "store", "nats-server cannot write its store in %s: %s", server.store_dir, line.split("] ", 2)[-1]
                )

    def _log_size(self) -> int:
        if self.server is None:
            return 0
        try:
            return self.server.log_path.stat().st_size
        except OSError:
            return 0

    async def _repair_store(self) -> None:
        """Restart a server whose store failed, once its disk has room again (a restart sooner fails the same way)."""
        server = self.server
        if server is None or self.store_fault is None:
            return
        try:
            free = shutil.disk_usage(server.store_dir).free
            needed = free_space_needed(server.store_dir)
        except OSError as exc:
            self._throttle.warning("space", "cannot read the free space of %s: %s", server.store_dir, exc)
            return
        if free < needed:
            self._throttle.warning(
                "space",
                "waiting for free space in %s before restarting nats-server (%.1f MiB free, %.1f MiB needed)",
                server.store_dir,
                free / MIB,
                needed / MIB,
            )
            return
        await self._restart(f"its store failed; {free / MIB:.0f} MiB free again")

    # --- the connection and JetStream -------------------------------------------------------------

    def _check_connection(self) -> None:
        down = self.connection.down_for
        if down > self.reconnect_timeout:
            raise SupervisionFailed(
                f"no connection to {self.connection.url} for {down:.0f} s "
                f"(reconnect timeout {self.reconnect_timeout:g} s)"
            )

    async def _check_jetstream(self) -> None:
        try:
            await asyncio.wait_for(self.connection.js.account_info(), 2.0)
        except (ServiceUnavailableError, APIError) as exc:
            self.jetstream_down = exc.description or repr(exc)
            if exc.code == 503 or "not enabled" in self.jetstream_down.lower():
                self.store_fault = f"JetStream disabled: {self.jetstream_down}"
        except Exception as exc:
            if self.connection.down_for > 0:
                return  # the disconnect is already reported; this is no news about JetStream
            self.jetstream_down = repr(exc)
        else:
            if self.jetstream_down is not None:
                log.warning("JetStream at %s answers again", self.connection.url)
            self.jetstream_down = None
            return
        self._throttle.warning(
            "jetstream", "JetStream at %s is unavailable: %s", self.connection.url, self.jetstream_down
        )


def _exit_code(server: EmbeddedNatsServer) -> int | None:
    """The exit code of a server child that died by itself; None while it runs or after a deliberate stop."""
    proc = server._proc
    if proc is None:
        return None
    return proc.poll()


async def supervised(supervisor: Supervisor, work: Awaitable[T]) -> T:
    """`work`, watched: raises `SupervisionFailed` (and cancels the work) when the supervisor gives up first."""
    working = asyncio.ensure_future(work)
    watching = asyncio.create_task(supervisor.run())
    try:
        await asyncio.wait({working, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, watching):
            task.cancel()
        await asyncio.wait({working, watching}, timeout=1.0)
    if working.done() and not working.cancelled():
        return working.result()
    failure = watching.exception() if watching.done() and not watching.cancelled() else None
    raise failure if isinstance(failure, SupervisionFailed) else SupervisionFailed(repr(failure))
