"""Stopping a long-running command on time: a clean stop on the first SIGINT/SIGTERM, every shutdown step
bounded so a dead NATS server cannot hold the process, and an immediate stop on the second signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM/SIGINT set `requested`; a second one runs `on_force` and ends the process at once (128 + signal).

    The second signal is the operator saying the clean stop takes too long: no traceback, no further waiting.
    """

    def __init__(self, requested: asyncio.Event | None = None, on_force: Callable[[], None] | None = None) -> None:
        self.requested = requested if requested is not None else asyncio.Event()
        self.on_force = on_force
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed: list[signal.Signals] = []

    def install(self) -> StopSignals:
        """Handle the signals where the loop can (the main thread on Unix); elsewhere leave them alone."""
        self._loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            try:
                self._loop.add_signal_handler(signum, self._received, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(signum)
        return self

    def remove(self) -> None:
        if self._loop is not None:
            for signum in self._installed:
                self._loop.remove_signal_handler(signum)
        self._installed = []

    def _received(self, signum: signal.Signals) -> None:
        if not self.requested.is_set():
            self.requested.set()
            return
        log.warning("second %s: stopping at once, without finishing the shutdown", signum.name)
        if self.on_force is not None:
            try:
                self.on_force()
            except Exception as exc:
                log.warning("stopping at once: %r", exc)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(128 + signum)


async def within(what: str, step: Awaitable[object], seconds: float) -> bool:
    """Await `step` for at most `seconds`; if it overruns or fails, log a WARNING naming `what` and go on.

    `asyncio.wait` rather than `wait_for`: a step that swallows its cancellation (nats-py under Python 3.11
    can) must not make the bound itself unbounded, so the cancelled step gets one more second, then is left.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        log.warning("%s did not finish within %g s; going on without it", what, seconds)
        return False
    if task.cancelled():
        log.warning("%s was cancelled", what)
        return False
    exc = task.exception()
    if exc is not None:
        log.warning("%s failed: %r", what, exc)
        return False
    return True
