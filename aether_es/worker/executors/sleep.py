"""The `sleep` executor: waits, then succeeds; for pacing a workflow and for trying out cancel and timeouts.

Config: `duration`, a duration such as `500ms` or `2m`. When the config has none, an input named
`duration` is used (the config wins when both are set). Outputs: none.

Succeeded after the time; a missing or malformed duration is Error (code 3). Cancelling the attempt ends
the wait at once.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult
from aether_es.worker.executors.common import (
    ConfigError,
    config_of,
    duration_setting,
    error,
    input_value,
)

SLEEP_TYPE = "sleep"


class SleepExecutor:
    executor_type: ClassVar[str] = SLEEP_TYPE

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        config = config_of(assignment)
        if "duration" in config:
            field, value = "config.duration", config["duration"]
        else:
            field, value = "input duration", input_value(assignment, "duration")
        try:
            seconds = duration_setting(value, field, SLEEP_TYPE)
        except ConfigError as exc:
            return error(str(exc))
        await asyncio.sleep(seconds)
        return TaskResult(code=ResultCode.SUCCEEDED)
