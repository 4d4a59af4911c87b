"""The event feed projector as a child process the stack owns (`runtime.feed_main` runs in it).

Projecting the feed costs about a third of an engine's event loop when both share it; in a process of its
own it takes the other core instead. The child dies with its owner, even on `kill -9` of it
(`adapters.child_process`), and sits in a session of its own, so a terminal's Ctrl-C reaches only the owner,
which stops it with SIGTERM once the engine has stopped: the feed drains last. A child that dies meanwhile is
reported at WARNING and started again (at most three times a minute); it resumes at its checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.child_process import spawn_owned
from aether_es.adapters.nats.connection import NATS_OPTIONS, NatsAuth
from aether_es.runtime.supervisor import RestartBudget

log = logging.getLogger(__name__)

MODULE = "aether_es.runtime.feed_main"
DRAIN = 2.0
"""Seconds a stopping feed spends publishing what is committed but not yet in the feed."""
CHECK_EVERY = 0.5
STOP_GRACE = 3.0
"""Seconds beyond the child's own drain that a stop waits before killing it."""


def _verbosity() -> int:
    """The owner's `-v` count, read back from its logging setup, so the child logs what the owner would."""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        return 2
    return 1 if logging.getLogger("aether_es").getEffectiveLevel() <= logging.INFO else 0


def _environment(auth: NatsAuth | None) -> dict[str, str]:
    """This environment with exactly `auth` as the `AETHER_NATS_*` variables (none for an open server)."""
    env = {k: v for k, v in os.environ.items() if k not in {o.env for o in NATS_OPTIONS}}
    for option in NATS_OPTIONS:
        value = getattr(auth, option.field) if auth is not None else None
        if value:
            env[option.env] = value
    return env


def _ended(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


class FeedProcess:
    """One `feed_main` child for the system at `url` and `prefix`, kept running until `stop`."""

    def __init__(self, url: str, prefix: str, auth: NatsAuth | None) -> None:
        self._args = [sys.executable, "-m", MODULE, url, prefix, "--verbose", str(_verbosity())]
        self._env = _environment(auth)
        self._proc: subprocess.Popen[bytes] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._budget = RestartBudget()

    async def start(self) -> None:
        if self._watch is None:
            self._spawn()
            self._watch = asyncio.create_task(self._keep_running(), name="event-feed-process")

    async def stop(self) -> None:
        """SIGTERM: the child publishes what is committed for up to `DRAIN` seconds, then exits; killed if late."""
        if self._watch is not None:
            await cancel_and_wait(self._watch)
            self._watch = None
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, DRAIN + STOP_GRACE)
        except subprocess.TimeoutExpired:
            log.warning("event feed process %d did not stop within %g s; killing it", proc.pid, DRAIN + STOP_GRACE)
            proc.kill()
            await asyncio.to_thread(proc.wait)

    def kill(self) -> None:
        """At once, for a shutdown cut short."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def _spawn(self) -> None:
        self._proc = spawn_owned(
            self._args, env=self._env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )

    async def _keep_running(self) -> None:
        refused = False
        while True:
            await asyncio.sleep(CHECK_EVERY)
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            code = proc.returncode
            if not self._budget.spend():
                if not refused:
                    log.warning(
                        "event feed process %s again; starting it again once the restart budget allows", _ended(code)
                    )
                refused = True
                continue
            refused = False
            log.warning("event feed process %d %s; starting it again", proc.pid, _ended(code))
            await asyncio.to_thread(self._spawn)
