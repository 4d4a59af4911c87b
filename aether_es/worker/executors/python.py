"""The `python` executor: calls a Python function by import path with the task's inputs.

Config: `callable` (required), `"package.module:function"` (a dotted attribute path after the colon also
works, e.g. `"package.module:Class.method"`). The module must be importable by the worker and allowed by it
(`aether-es worker --allow-module NAME`, a module and its submodules; the `--import` modules are allowed
too): a workflow chooses among the functions the worker's operator offers, never any code on the worker.
The callable is never interpolated; a placeholder in it is an error.

The function is called with the task's inputs as keyword arguments, `-` in a name becoming `_` (input
names are DNS labels, so `max-count` arrives as `max_count`); secret inputs arrive resolved and redaction
keeps them out of the outputs. A sync function runs in a thread, so it never blocks the worker; an async
one is awaited.

Outputs: a returned dict becomes one output parameter per key; any other value becomes one parameter
`result`.

Artifacts: the worker's threads share one current folder, so a task cannot have its own; a function with a
`workdir` parameter receives the attempt's work directory (a `Path`) when the task has artifacts, finds its
inputs under it (`inputs/<name>`) and writes its declared outputs' `path`s there.

Returning is Succeeded; raising is Failed (code 2) with the exception's type and message; an import path
that is not allowed or does not resolve, or inputs the function's signature does not accept, is Error
(code 3) naming the path. Cancelling the attempt cancels an async function; a sync one cannot be
interrupted and finishes in its thread, its result discarded.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult
from aether_es.worker.executor import WORKDIR
from aether_es.worker.executors.common import (
    CodeRefused,
    ConfigError,
    config_of,
    error,
    parameters,
    refuse_placeholders,
    refused,
    string_setting,
)

PYTHON_TYPE = "python"


ALLOW_OPTION = "--allow-module"


def module_allowed(module_name: str, allowed: Iterable[str]) -> bool:
    """Whether the module is one of `allowed` or a submodule of one."""
    return any(module_name == name or module_name.startswith(name + ".") for name in allowed)


def resolve(path: str, allowed: Iterable[str]) -> Callable[..., Any]:
    """The object `package.module:attr.attr` names; ConfigError naming the path when it is not allowed
    (checked before anything is imported) or does not resolve."""
    refuse_placeholders(path, "callable", PYTHON_TYPE)
    module_name, colon, attribute = path.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(f'python: config.callable must look like "package.module:function", got {path!r}')
    if not module_allowed(module_name, allowed):
        raise CodeRefused(
            f"python: module {module_name!r} ({path!r}) is not allowed on this worker: "
            f"start it with {ALLOW_OPTION} {module_name} to offer it"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise ConfigError(f"python: cannot import {path!r}: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise ConfigError(f"python: {path!r} is not callable")
    function: Callable[..., Any] = target
    return function


def _takes(function: Callable[..., Any], name: str) -> bool:
    """Whether the function has a parameter of that name (False when it has no signature to read)."""
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


class PythonExecutor:
    """Runs callables from the allowed modules only (none by default)."""

    executor_type: ClassVar[str] = PYTHON_TYPE

    def __init__(self, allowed_modules: Iterable[str] = ()) -> None:
        self.allowed_modules = tuple(allowed_modules)

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        try:
            path = string_setting(config_of(assignment), "callable", PYTHON_TYPE) or ""
            function = resolve(path, self.allowed_modules)
        except ConfigError as exc:
            return refused(exc, assignment)
        kwargs = {p.name.replace("-", "_"): p.value for p in assignment.inputs}
        if assignment.workdir and _takes(function, WORKDIR):
            kwargs[WORKDIR] = Path(assignment.workdir)
        try:
            inspect.signature(function).bind(**kwargs)
        except TypeError as exc:
            return error(f"python: the inputs do not fit {path!r}: {exc}")
        except ValueError:  # no signature to check (some builtins): let the call decide
            pass
        try:
            if inspect.iscoroutinefunction(function):
                value = await function(**kwargs)
            else:
                value = await asyncio.to_thread(function, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            return TaskResult(code=ResultCode.FAILED, message=f"{type(exc).__name__}: {exc}")
        outputs = {str(k): v for k, v in value.items()} if isinstance(value, dict) else {"result": value}
        return TaskResult(code=ResultCode.SUCCEEDED, parameters=parameters(outputs))
