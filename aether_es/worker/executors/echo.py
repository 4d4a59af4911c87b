"""The playground's `echo` executor: copies inputs to outputs, with suspend/failure gates for testing.

Every conformance example runs on it, so it follows Aether's `cmd/playground/echo.go` step by step.
It is pure and instant: it never sleeps, never raises, and slowness comes only from the engine
(suspension plus resume, cancel or timeout).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter

__all__ = ["ECHO_TYPE", "SUSPEND_MESSAGE", "EchoExecutor", "run_echo"]

ECHO_TYPE = "echo"
SUSPEND_MESSAGE = "suspended; awaiting external resume signal"


RESUMED_MARKER = "__resumed"
_SUSPEND = "suspend"
_FAIL_COUNT = "fail-count"
_OUTPUTS = "outputs"
_AUTO_RESUME_AFTER = "auto-resume-after"

# Declared output types echo understands, with the JSON-schema spellings accepted as aliases.
_TYPE_ALIASES = {"int": "int", "bool": "bool", "string": "string", "array": "array", "object": "object"}
_TYPE_ALIASES |= {"integer": "int", "boolean": "bool"}

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Declared:
    """One `{name, type, value?}` entry of the `outputs` input; `has_value` mirrors Go's RawMessage length."""

    name: str
    type: str
    has_value: bool
    value: Any


class EchoExecutor:
    """Executor for type "echo" (worker `Executor` protocol: `async execute(assignment) -> TaskResult`)."""

    executor_type: ClassVar[str] = ECHO_TYPE

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        try:
            return run_echo(assignment)
        except Exception as exc:  # pragma: no cover - defensive: echo must never raise into the worker
            _log.exception("echo: unexpected failure for task run %s", assignment.task_run_id)
            return TaskResult(code=ResultCode.ERROR, message=f"echo: internal error: {exc}")


def run_echo(assignment: TaskAssignment) -> TaskResult:
    """The whole echo algorithm, synchronous and side-effect free apart from warning logs."""
    resumed = False
    suspend = False
    fail_count = 0
    declared: list[_Declared] = []
    params: list[WireParameter] = []
    index: dict[str, int] = {}  # name -> position in params; the last input with a name wins

    # Step 1: control inputs update their setting only when they parse, as Go's json.Unmarshal does.
    for p in assignment.inputs:
        if p.name == RESUMED_MARKER:
            resumed = True
        elif p.name == _SUSPEND:
            parsed_bool = _parse_bool(p.value)
            suspend = suspend if parsed_bool is None else parsed_bool
        elif p.name == _FAIL_COUNT:
            parsed_int = _parse_int(p.value)
            fail_count = fail_count if parsed_int is None else parsed_int
        elif p.name == _OUTPUTS:
            parsed_outputs = _parse_outputs(p.value)
            declared = declared if parsed_outputs is None else parsed_outputs
        elif p.name == _AUTO_RESUME_AFTER:
            continue
        else:
            index[p.name] = len(params)
            params.append(WireParameter(name=p.name, type=p.type, value=p.value))

    # Step 2: suspend gate.
    if suspend and not resumed:
        return TaskResult(code=ResultCode.SUSPENDED, message=SUSPEND_MESSAGE)

    # Step 3: failure gate: the first N attempts fail, attempt N+1 succeeds.
    retry_count = assignment.retry_count
    if fail_count > 0 and retry_count < fail_count:
        message = f"simulated failure on attempt {retry_count + 1} (failCount={fail_count})"
        return TaskResult(code=ResultCode.FAILED, message=message)

    # Step 4: merge declared outputs in declaration order.
    for out in declared:
        if not out.name:
            _log.warning("echo %s: skipping output entry with empty name", assignment.task_run_id)
            continue
        out_type = _TYPE_ALIASES.get(out.type)
        if out_type is None:
            _log.warning("echo: output %r has unknown type %r, treating as string", out.name, out.type)
            out_type = "string"
        if out.has_value and not _matches(out_type, out.value):
            _log.warning("echo: output %r value does not match declared type %s", out.name, out_type)
        position = index.get(out.name)
        if position is not None:
            params[position].type = out_type
            if out.has_value:
                params[position].value = out.value
        else:
            value = out.value if out.has_value else _zero_value(out_type)
            index[out.name] = len(params)
            params.append(WireParameter(name=out.name, type=out_type, value=value))

    return TaskResult(code=ResultCode.SUCCEEDED, parameters=params)


def _parse_bool(value: Any) -> bool | None:
    """A JSON bool, or the strings "true"/"false" (values that went through text); else no opinion."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    return None


def _parse_int(value: Any) -> int | None:
    """An int, a whole float (numbers decode as float64 in the engine) or a numeric string; else None.

    A fractional number gives None, as Go's json.Unmarshal into an int fails on `2.5`.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _parse_outputs(value: Any) -> list[_Declared] | None:
    """A JSON list of declarations, possibly JSON-encoded as a string; None if it is not a list.

    Entries that are not objects, or whose `name` is not a string, get an empty name (and are skipped
    later); a non-string `type` is empty (so treated as string). A `value` key holding JSON null counts
    as present, because Go keeps it as the 4-byte RawMessage `null`.
    """
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list):
        return None
    declared: list[_Declared] = []
    for entry in value:
        if not isinstance(entry, dict):
            declared.append(_Declared(name="", type="", has_value=False, value=None))
            continue
        name = entry.get("name")
        out_type = entry.get("type")
        declared.append(
            _Declared(
                name=name if isinstance(name, str) else "",
                type=out_type if isinstance(out_type, str) else "",
                has_value="value" in entry,
                value=entry.get("value"),
            )
        )
    return declared


def _matches(out_type: str, value: Any) -> bool:
    """Go's validateValue: JSON null never matches; `int` accepts any JSON number (float64 in Go)."""
    if out_type == "int":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if out_type == "bool":
        return isinstance(value, bool)
    if out_type == "string":
        return isinstance(value, str)
    if out_type == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def _zero_value(out_type: str) -> Any:
    """Fresh zero value per call so outputs never share a mutable default."""
    zeros: dict[str, Any] = {"int": 0, "bool": False, "string": "", "array": [], "object": {}}
    return zeros[out_type]
