"""The `await` executor: an approval or any other external signal, as a task that waits to be resumed.

Config: `message`, the text shown as the task's message while it waits (what is awaited, who should
resume it); default `awaiting resume`.

The first attempt suspends the task (code 1). Whoever resumes it (`aether-es resume RUN TASK --payload
JSON`) sends the decision as the payload; the resumed attempt succeeds with the payload's keys as output
parameters (`{"approved": true}` gives output `approved`). A resume without a payload succeeds with no
outputs. It holds nothing while it waits, so a cancel or a timeout simply ends the suspended task.
"""

from __future__ import annotations

from typing import ClassVar

from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult
from aether_es.worker.executors.common import (
    ConfigError,
    config_of,
    error,
    input_value,
    parameters,
    string_setting,
)

AWAIT_TYPE = "await"
DEFAULT_MESSAGE = "awaiting resume"


class AwaitExecutor:
    executor_type: ClassVar[str] = AWAIT_TYPE

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        if assignment.resumed_with is not None:
            payload = {key: input_value(assignment, key) for key in assignment.resumed_with}
            return TaskResult(code=ResultCode.SUCCEEDED, parameters=parameters(payload))
        try:
            message = string_setting(config_of(assignment), "message", AWAIT_TYPE) or DEFAULT_MESSAGE
        except ConfigError as exc:
            return error(str(exc))
        return TaskResult(code=ResultCode.SUSPENDED, message=message)
