"""What the built-in executors share: result codes, reading `executor.config`, and their error results.

A config value of the wrong shape is the workflow author's mistake, not the command's: it ends the attempt
as Error (code 3) with a message naming the field, never as a traceback.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from aether_es.engine.binding import interpolate, placeholder_keys
from aether_es.model.durations import parse_duration
from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter

_log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A config value the executor cannot use; the message names the field."""


class CodeRefused(ConfigError):
    """A config that would let a value choose or become the code that runs; the message names no value."""


def refused(exc: ConfigError, assignment: TaskAssignment) -> TaskResult:
    """The Error result for a config error; a refused attempt to choose the code is logged at WARNING too."""
    if isinstance(exc, CodeRefused):
        _log.warning("task run %s refused: %s", assignment.task_run_id, exc)
    return error(str(exc))


def inputs_env(assignment: TaskAssignment) -> dict[str, Any]:
    """`inputs.parameters.NAME -> value` for all the assignment's inputs, secrets resolved; later names win,
    as in the engine's interpolation."""
    return {f"inputs.parameters.{p.name}": p.value for p in assignment.inputs}


def config_of(assignment: TaskAssignment) -> dict[str, Any]:
    """The config with the strings the engine left for the worker (`templates`) filled in from all inputs.

    Only those strings, each in one pass: a value that looks like a placeholder stays text. What the
    executor reports is scrubbed of secret values by the worker.
    """
    config = assignment.config or {}
    if not assignment.templates:
        return config
    env = inputs_env(assignment)
    filled: dict[str, Any] = copy.deepcopy(config)
    for path in filter(None, assignment.templates):
        *parents, last = path
        holder: Any = filled
        for step in parents:
            holder = _step(holder, step)
        text = _step(holder, last)
        if isinstance(text, str):
            holder[last] = interpolate(text, env)
    return filled


def _step(holder: Any, step: str | int) -> Any:
    """One step of a config path, None where the path does not fit the config."""
    if isinstance(holder, dict) and isinstance(step, str):
        return holder.get(step)
    if isinstance(holder, list) and isinstance(step, int) and 0 <= step < len(holder):
        return holder[step]
    return None


def refuse_placeholders(text: str, field: str, executor: str) -> None:
    """A ConfigError when `text`, a key that chooses the code that runs, holds a placeholder."""
    if placeholder_keys(text):
        raise CodeRefused(
            f"{executor}: config.{field} must not hold a placeholder: values never choose the code that runs"
        )


def input_value(assignment: TaskAssignment, name: str) -> Any:
    """The last input of that name (later inputs, e.g. a resume payload, override earlier ones), else None."""
    for param in reversed(assignment.inputs):
        if param.name == name:
            return param.value
    return None


def string_setting(config: dict[str, Any], key: str, executor: str, default: str | None = None) -> str | None:
    value = config.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{executor}: config.{key} must be a string, got {type(value).__name__}")
    return value


def int_setting(config: dict[str, Any], key: str, executor: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
        raise ConfigError(f"{executor}: config.{key} must be a non-negative integer, got {value!r}")
    return int(value)


def as_text(value: Any) -> str:
    """A value as a command line or a header sees it: strings as they are, anything else as its JSON.

    A whole-string placeholder keeps the input's type, so `"{{inputs.parameters.items}}"` may be a list;
    it reaches a command as JSON text rather than as Python's rendering.
    """
    return value if isinstance(value, str) else json.dumps(value)


def object_setting(config: dict[str, Any], key: str, executor: str) -> dict[str, str]:
    """A JSON object whose values become text (headers, environment variables)."""
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{executor}: config.{key} must be an object, got {type(value).__name__}")
    return {name: as_text(item) for name, item in value.items()}


def duration_setting(value: Any, field: str, executor: str) -> float:
    """Seconds for an Aether duration string such as `1.5s` or `2m`."""
    seconds = parse_duration(value) if isinstance(value, str) else None
    if seconds is None:
        raise ConfigError(f'{executor}: {field} must be a duration such as "30s", got {value!r}')
    return seconds


def parameters(values: dict[str, Any]) -> list[WireParameter]:
    return [WireParameter(name=name, value=value) for name, value in values.items()]


def error(message: str) -> TaskResult:
    return TaskResult(code=ResultCode.ERROR, message=message)
