"""Deadlines for tasks and runs, and the watcher that reports those that pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

TIMEOUT = "timeout"
RETRY = "retry"
"""The kind of a deadline that, once passed, lets the retry of a failed attempt be dispatched (backoff)."""


def task_key(task_run_id: str) -> str:
    """The key of a task run's timeout deadline: one per task run, each attempt's replacing the last's."""
    return f"task.{task_run_id}"


def run_key(run_id: str) -> str:
    """The key of a run's timeout deadline."""
    return f"run.{run_id}"


def retry_key(task_run_id: str, attempt: int) -> str:
    """The key of the retry deadline after `attempt` failed: one per attempt, so a stale one never matches."""
    return f"retry.{task_run_id}.{attempt}"


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in time after which the watcher reports a timeout, or (kind `retry`) that a retry is due.
    `task_run_id` is "" for a run deadline; a retry deadline's `attempt` is the attempt that failed."""

    run_id: str
    at: str
    task_run_id: str = ""
    attempt: int = 0
    kind: str = TIMEOUT

    @property
    def key(self) -> str:
        if self.kind == RETRY:
            return retry_key(self.task_run_id, self.attempt)
        return task_key(self.task_run_id) if self.task_run_id else run_key(self.run_id)


class DeadlineStore(Protocol):
    async def set(self, deadlines: Sequence[Deadline]) -> None: ...

    async def clear(self, keys: Sequence[str]) -> None: ...


class TimeoutWatcher(Protocol):
    """Stateless: reads the deadline store and reports each passed deadline at least once until cleared."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
