"""What a worker runs: one executor per executor type, turning an assignment into Aether's ExecOutputs."""

from __future__ import annotations

from typing import Protocol

from aether_es.ports.wire import TaskAssignment, TaskResult

WORKDIR = "workdir"
"""The parameter through which a Python function (`@executor` or the `python` executor) receives the attempt's
work directory, where its input artifacts are and its output artifacts go."""


class Executor(Protocol):
    """Runs one task attempt. Raising is allowed: the worker reports it as an error result (code 3).

    The worker may cancel the coroutine when the engine cancels the task; executors holding resources
    should release them in `finally` blocks. An executor may also have an `input_schema` attribute (a JSON
    Schema dict): the worker registers it and the engine checks a task's inputs against it at dispatch.
    """

    async def execute(self, assignment: TaskAssignment) -> TaskResult: ...
