"""Task dispatch to workers and the reports that come back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aether_es.ports.wire import Report, TaskAssignment


@dataclass(slots=True)
class Delivery:
    """A report received at least once; `ack` after its effects are durable."""

    report: Report
    ack: Callable[[], Awaitable[None]]


ReportHandler = Callable[[list[Delivery]], Awaitable[None]]


class TaskBroker(Protocol):
    """The engine's side of dispatch."""

    async def dispatch(self, assignments: Sequence[TaskAssignment]) -> None:
        """Queue assignments for workers of their executor types; safe to repeat for the same attempt."""
        ...

    async def cancel(self, task_run_ids: Sequence[str]) -> None:
        """Ask workers holding these tasks to stop them; best effort."""
        ...

    async def report(self, reports: Sequence[Report]) -> None:
        """Publish reports durably (used by workers and the timeout watcher)."""
        ...

    async def consume_reports(
        self, handler: ReportHandler, partition: int | None = None, stop: asyncio.Event | None = None
    ) -> None:
        """Deliver the reports of `partition` (default: of every run) in batches to `handler` until cancelled,
        or until `stop` is set (handing back what it fetched but did not deliver)."""
        ...


@dataclass(slots=True)
class TaskDelivery:
    """An assignment received by a worker: ack when its completion report is durable.

    `nak` hands it back unfinished (a draining worker that ran out of time), so another worker gets it at
    once instead of after the ack wait.
    """

    assignment: TaskAssignment
    ack: Callable[[], Awaitable[None]]
    in_progress: Callable[[], Awaitable[None]]
    nak: Callable[[], Awaitable[None]]
    dispatched_at: float = 0.0
    """When the assignment was published to the work queue (epoch seconds); 0 when the channel cannot tell."""


class WorkerChannel(Protocol):
    """A worker's side of dispatch."""

    async def fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        """Up to `batch` assignments for these executor types; empty after `timeout` seconds."""
        ...

    async def report(self, reports: Sequence[Report]) -> None: ...

    async def cancellations(self, handler: Callable[[str], Awaitable[None]]) -> None:
        """Call `handler(task_run_id)` for each cancel request until cancelled."""
        ...
