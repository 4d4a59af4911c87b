"""A task assignment for calling a built-in executor directly, as a worker would hand it over."""

from __future__ import annotations

from typing import Any

from aether_es.ports.wire import TaskAssignment, WireParameter


def assignment(executor_type: str, config: dict[str, Any] | None = None, **inputs: Any) -> TaskAssignment:
    return TaskAssignment(
        task_run_id="r-1",
        workflow_run_id="r",
        task_name="t",
        executor_type=executor_type,
        attempt=1,
        inputs=[WireParameter(name=k, value=v) for k, v in inputs.items()],
        config=config,
    )
