"""WorkerPool over an in-memory WorkerChannel: ordering of report and ack, errors, cancellation races."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from aether_es.ports.broker import TaskDelivery
from aether_es.ports.wire import Report, TaskAssignment, TaskResult
from aether_es.worker.pool import WorkerPool


def assignment(n: int, executor_type: str = "x") -> TaskAssignment:
    return TaskAssignment.model_validate(
        {"taskRunID": f"t{n}", "workflowRunID": "r", "taskName": "n", "executorType": executor_type, "attempt": 3}
    )


class MemoryChannel:
    """Hands out queued assignments once; records reports and acks in one journal to check their order."""

    def __init__(self, assignments: Sequence[TaskAssignment]) -> None:
        self.queue = list(assignments)
        self.journal: list[str] = []
        self.reports: list[Report] = []
        self.on_fetch: Callable[[list[TaskDelivery]], Awaitable[None]] | None = None
        self._cancel: Callable[[str], Awaitable[None]] | None = None
        self.listening = asyncio.Event()

    async def fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        taken, self.queue = self.queue[:batch], self.queue[batch:]
        if not taken:
            await asyncio.sleep(timeout)
            return []
        deliveries = [self._delivery(a) for a in taken]
        if self.on_fetch:
            await self.on_fetch(deliveries)
        return deliveries

    def _delivery(self, a: TaskAssignment) -> TaskDelivery:
        async def ack() -> None:
            self.journal.append(f"ack {a.task_run_id}")

        async def in_progress() -> None:
            self.journal.append(f"wip {a.task_run_id}")

        async def nak() -> None:
            self.journal.append(f"nak {a.task_run_id}")

        return TaskDelivery(assignment=a, ack=ack, in_progress=in_progress, nak=nak)

    async def report(self, reports: Sequence[Report]) -> None:
        for report in reports:
            self.reports.append(report)
            self.journal.append(f"{report.kind} {report.task_run_id}")

    async def cancellations(self, handler: Callable[[str], Awaitable[None]]) -> None:
        self._cancel = handler
        self.listening.set()
        await asyncio.Event().wait()

    async def cancel(self, task_run_id: str) -> None:
        assert self._cancel is not None
        await self._cancel(task_run_id)


class Echo:
    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        await asyncio.sleep(0)
        return TaskResult(message=assignment.task_run_id)


class Boom:
    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        raise ValueError("bad input x")


async def run_until_idle(pool: WorkerPool, channel: MemoryChannel) -> None:
    await pool.start()
    for _ in range(200):
        if not channel.queue and not pool.active:
            break
        await asyncio.sleep(0.01)
    await pool.stop(timeout=5)


async def test_started_then_completed_then_ack() -> None:
    channel = MemoryChannel([assignment(1)])
    pool = WorkerPool(channel, {"x": Echo()}, worker_id="w", fetch_timeout=0.05, start_report_after=0)
    await run_until_idle(pool, channel)
    assert channel.journal == ["started t1", "completed t1", "ack t1"]
    started, completed = channel.reports
    assert (started.attempt, started.worker_id, started.run_id) == (3, "w", "r")
    assert completed.result == TaskResult(message="t1")
    assert completed.started_at == started.at


async def test_a_short_task_reports_its_start_with_its_completion() -> None:
    channel = MemoryChannel([assignment(1)])
    await run_until_idle(WorkerPool(channel, {"x": Echo()}, worker_id="w", fetch_timeout=0.05), channel)
    assert channel.journal == ["completed t1", "ack t1"]
    (completed,) = channel.reports
    assert completed.started_at and completed.started_at <= completed.at


async def test_a_longer_task_reports_its_start_once_the_grace_has_passed() -> None:
    class Slow:
        async def execute(self, assignment: TaskAssignment) -> TaskResult:
            await asyncio.sleep(0.15)
            return TaskResult()

    channel = MemoryChannel([assignment(1)])
    pool = WorkerPool(channel, {"x": Slow()}, fetch_timeout=0.05, start_report_after=0.03)
    await run_until_idle(pool, channel)
    assert channel.journal == ["started t1", "completed t1", "ack t1"]
    started, completed = channel.reports
    assert completed.started_at == started.at


async def test_a_long_task_is_kept_in_progress() -> None:
    class Slow:
        async def execute(self, assignment: TaskAssignment) -> TaskResult:
            await asyncio.sleep(0.25)
            return TaskResult()

    channel = MemoryChannel([assignment(1), assignment(2)])
    await run_until_idle(WorkerPool(channel, {"x": Slow()}, fetch_timeout=0.05, ack_wait=0.3), channel)
    for task in ("t1", "t2"):
        signals = [entry for entry in channel.journal if entry == f"wip {task}"]
        assert 1 <= len(signals) <= 3
        assert channel.journal.index(f"wip {task}") < channel.journal.index(f"ack {task}")


async def test_executor_exception_is_an_error_result() -> None:
    channel = MemoryChannel([assignment(1)])
    await run_until_idle(WorkerPool(channel, {"x": Boom()}, fetch_timeout=0.05), channel)
    result = channel.reports[-1].result
    assert result is not None and (result.code, result.message) == (3, "bad input x")


async def test_cancel_before_the_executor_starts_runs_nothing() -> None:
    channel = MemoryChannel([assignment(1)])
    ran: list[str] = []

    class Recording:
        async def execute(self, assignment: TaskAssignment) -> TaskResult:
            ran.append(assignment.task_run_id)
            return TaskResult()

    pending: list[asyncio.Task[None]] = []

    async def cancel_right_after(deliveries: list[TaskDelivery]) -> None:
        assert channel.listening.is_set()
        # Runs once fetch has returned, before the pool's handler for the delivery takes its first step.
        pending.extend(asyncio.create_task(channel.cancel(d.assignment.task_run_id)) for d in deliveries)

    channel.on_fetch = cancel_right_after
    pool = WorkerPool(channel, {"x": Recording()}, fetch_timeout=0.05)
    await run_until_idle(pool, channel)
    await asyncio.gather(*pending)
    assert channel.journal == ["ack t1"]  # honoured although the executor had not started: nothing runs
    assert ran == []


class Overlapping:
    """An executor that takes `pause` seconds and records how many of its executions ran at once at most."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.running = 0
        self.peak = 0

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(self.pause)
        self.running -= 1
        return TaskResult()


async def test_concurrency_is_respected() -> None:
    executor = Overlapping(0.02)
    channel = MemoryChannel([assignment(n) for n in range(12)])
    await run_until_idle(WorkerPool(channel, {"x": executor}, concurrency=3, fetch_timeout=0.05), channel)
    assert executor.peak == 3
    assert sum(1 for entry in channel.journal if entry.startswith("ack")) == 12


class Fetches(MemoryChannel):
    """Also records the size of every fetch that returned something."""

    def __init__(self, assignments: Sequence[TaskAssignment]) -> None:
        super().__init__(assignments)
        self.batches: list[int] = []

    async def fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        deliveries = await super().fetch(executor_types, batch, timeout)
        if deliveries:
            self.batches.append(len(deliveries))
        return deliveries


async def test_short_tasks_are_fetched_ahead_of_free_slots_and_still_run_within_the_concurrency() -> None:
    executor = Overlapping(0)
    channel = Fetches([assignment(n) for n in range(200)])
    pool = WorkerPool(channel, {"x": executor}, concurrency=2, prefetch=30, fetch_timeout=0.05)
    await run_until_idle(pool, channel)
    assert sum(1 for entry in channel.journal if entry.startswith("ack")) == 200
    assert executor.peak == 2
    assert channel.batches[0] == 2  # nothing is known of the tasks yet
    assert max(channel.batches) == 32  # once they proved short: the slots and the prefetch
    assert len(channel.batches) < 200 / 4


async def test_long_tasks_are_not_fetched_ahead() -> None:
    class Slow:
        async def execute(self, assignment: TaskAssignment) -> TaskResult:
            await asyncio.sleep(0.05)
            return TaskResult()

    channel = Fetches([assignment(n) for n in range(8)])
    pool = WorkerPool(channel, {"x": Slow()}, concurrency=2, prefetch=30, fetch_timeout=0.05)
    await run_until_idle(pool, channel)
    assert sum(1 for entry in channel.journal if entry.startswith("ack")) == 8
    assert max(channel.batches) == 2
