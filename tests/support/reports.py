"""What the broker tests share: assignments numbered `t<n>`, executors for them, and a report handler to wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aether_es.ports.broker import Delivery
from aether_es.ports.wire import Report, TaskAssignment, TaskResult, WireParameter


def assignment(n: int, executor_type: str = "double", attempt: int = 1, run: str = "run1") -> TaskAssignment:
    """Task run `t<n>` of `run`, input `x` = n (also in an `executor.config` command, for the config path)."""
    return TaskAssignment.model_validate(
        {
            "taskRunID": f"t{n}",
            "workflowRunID": run,
            "taskName": f"task{n}",
            "executorType": executor_type,
            "attempt": attempt,
            "inputs": [{"name": "x", "type": "int", "value": n}],
            "config": {"command": ["echo", "{{inputs.parameters.x}}"]},
        }
    )


class Collector:
    """A report handler that acks everything and lets a test wait for a condition on what it saw."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self._changed = asyncio.Event()

    async def __call__(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.reports.append(delivery.report)
            await delivery.ack()
        self._changed.set()

    async def until(self, condition: Callable[[list[Report]], bool], timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not condition(self.reports):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def of(self, kind: str) -> list[Report]:
        return [r for r in self.reports if r.kind == kind]


class Doubler:
    """Doubles input `x` into output `y`."""

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        x = assignment.inputs[0].value
        return TaskResult(parameters=[WireParameter(name="y", type="int", value=2 * x)])


class Sleeper:
    """Runs until cancelled, noting which task runs were."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.append(assignment.task_run_id)
            raise
        return TaskResult()
