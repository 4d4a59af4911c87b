"""Deadlines for tasks and runs, and the watcher that reports those that pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point in time after which the watcher reports a timeout. `task_run_id` is "" for a run deadline."""

    run_id: str
    at: str
    task_run_id: str = ""
    attempt: int = 0

    @property
    def key(self) -> str:
        return f"task.{self.task_run_id}" if self.task_run_id else f"run.{self.run_id}"


class DeadlineStore(Protocol):
    async def set(self, deadlines: Sequence[Deadline]) -> None: ...

    async def clear(self, keys: Sequence[str]) -> None: ...


class TimeoutWatcher(Protocol):
    """Stateless: reads the deadline store and reports each passed deadline at least once until cleared."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
