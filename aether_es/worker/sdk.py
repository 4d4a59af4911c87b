"""Executors from plain Python functions, and `run` to serve them as a worker.

A decorated function's typed parameters become a pydantic model: its JSON Schema is the executor's input
schema (registered with the worker, checked by the engine at dispatch) and the worker validates the task's
inputs against it again before calling the function. The return value becomes the output parameters.

Artifacts are paths: a parameter annotated `Path` receives the local path of the input artifact of its name
(`-` in the artifact's name read as `_`), one named `workdir` the attempt's work directory, and a `Path` in
the return value is an output artifact of that name (relative to the work directory, or absolute), which the
worker uploads like the task's declared outputs (docs/artifacts.md).
Exceptions pick the phase: `Suspend` suspends the task, `TaskError` makes it Error (retried by default),
any other exception makes it Failed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path, PurePath
from typing import Any, TypeVar, get_type_hints

from nats.aio.client import Client
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from aether_es.adapters.nats.broker import NatsWorkerChannel
from aether_es.adapters.nats.connection import NatsAuth, NatsConnection, connect
from aether_es.adapters.nats.layout import DEFAULT_ACK_WAIT, Layout, ensure_bucket, ensure_object_store, ensure_stream
from aether_es.adapters.nats.worker_registry import DEFAULT_TTL, NatsWorkerRegistry
from aether_es.model.phases import ResultCode
from aether_es.observability.tracing import configure_from_env as configure_tracing
from aether_es.ports.wire import ResultArtifact, TaskAssignment, TaskResult, WireParameter
from aether_es.runtime.shutdown import StopSignals, within
from aether_es.runtime.state_dir import DEFAULT_STATE_DIR
from aether_es.worker.artifacts import ArtifactStager, work_root
from aether_es.worker.executor import WORKDIR, Executor
from aether_es.worker.pool import WorkerPool
from aether_es.worker.repositories import default_repositories
from aether_es.worker.task_log import NatsTaskLogs

log = logging.getLogger(__name__)


F = TypeVar("F", bound=Callable[..., Any])

CLOSE_GRACE = 5.0
"""Seconds the drain may take beyond `drain_timeout` (unregistering, handing back) before it is abandoned."""

_REGISTERED: dict[str, FunctionExecutor] = {}


class TaskError(Exception):
    """Raise to end the task as Error (code 3): something went wrong around the work, worth a retry."""


class Suspend(Exception):
    """Raise to suspend the task (code 1) until it is resumed; the message tells whoever must resume it."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class FunctionExecutor:
    """An `Executor` calling `function` with the task's inputs validated against its typed parameters.

    A parameter annotated `TaskAssignment` receives the whole assignment (its config, workdir, attempt)
    and is not an input. Sync functions run in a thread so they never block the worker's event loop; a
    cancelled task stops waiting for such a thread, which runs on to its end.
    """

    def __init__(self, executor_type: str, function: Callable[..., Any]) -> None:
        self.executor_type = executor_type
        self.function = function
        self._is_async = inspect.iscoroutinefunction(function)
        self._assignment_param, self._paths, self.inputs_model = _inputs_model(executor_type, function)
        self.input_schema: dict[str, Any] = self.inputs_model.model_json_schema()
        self.uses_workdir = bool(self._paths)
        """A function taking paths gets a work directory even when its task declares no artifacts."""

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        try:
            inputs = self.inputs_model.model_validate({p.name: p.value for p in assignment.inputs})
        except ValidationError as exc:
            return TaskResult(code=ResultCode.FAILED, message=describe_validation_error(exc))
        kwargs = {name: getattr(inputs, name) for name in type(inputs).model_fields}
        if self._assignment_param:
            kwargs[self._assignment_param] = assignment
        try:
            kwargs.update(_paths(self._paths, assignment))
        except TaskError as exc:
            return TaskResult(code=ResultCode.FAILED, message=str(exc))
        try:
            if self._is_async:
                value = await self.function(**kwargs)
            else:
                value = await asyncio.to_thread(self.function, **kwargs)
        except Suspend as exc:
            return TaskResult(code=ResultCode.SUSPENDED, message=exc.message)
        except TaskError as exc:
            return TaskResult(code=ResultCode.ERROR, message=str(exc) or type(exc).__name__)
        except Exception as exc:
            log.info("executor %s raised %r", self.executor_type, exc)
            return TaskResult(code=ResultCode.FAILED, message=str(exc) or type(exc).__name__)
        return outputs_result(self.executor_type, value)


def executor(executor_type: str) -> Callable[[F], F]:
    """Register the decorated function as the executor for `executor_type`; the function stays callable."""
    if not executor_type or not isinstance(executor_type, str):
        raise ValueError(f"executor type must be a non-empty string, got {executor_type!r}")

    def register(function: F) -> F:
        if executor_type in _REGISTERED and _REGISTERED[executor_type].function is not function:
            raise ValueError(f"executor type {executor_type!r} is already registered")
        _REGISTERED[executor_type] = FunctionExecutor(executor_type, function)
        return function

    return register


def registered() -> dict[str, Executor]:
    """The executors registered by `@executor` so far (in the modules imported until now), by type."""
    return dict(_REGISTERED)


def describe_validation_error(exc: ValidationError) -> str:
    """`input "width": Input should be a valid integer` for the first problem, and how many more there are."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    message = f'input "{where}": {first["msg"]}' if where else first["msg"]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message


def outputs_result(executor_type: str, value: Any) -> TaskResult:
    """A success carrying `value` as output parameters: a dict's items or a pydantic model's fields."""
    if value is None:
        return TaskResult(code=ResultCode.SUCCEEDED)
    if isinstance(value, TaskResult):
        return value
    if isinstance(value, BaseModel):
        files = {name: item for name, item in value if isinstance(item, PurePath)}
        items = {k: v for k, v in value.model_dump(mode="json").items() if k not in files}
    elif isinstance(value, Mapping):
        files = {str(k): v for k, v in value.items() if isinstance(v, PurePath)}
        items = {str(k): to_jsonable_python(v) for k, v in value.items() if str(k) not in files}
    else:
        return TaskResult(
            code=ResultCode.ERROR,
            message=f"executor {executor_type!r} returned {type(value).__name__}; return a dict or a pydantic model",
        )
    return TaskResult(
        code=ResultCode.SUCCEEDED,
        parameters=[WireParameter(name=k, type=_json_type(v), value=v) for k, v in items.items()],
        artifacts=[ResultArtifact(name=name, path=str(path)) for name, path in files.items()],
    )


def _json_type(value: Any) -> str:
    """The Aether parameter type of a JSON value (as the echo executor spells them)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _inputs_model(executor_type: str, function: Callable[..., Any]) -> tuple[str, dict[str, Any], type[BaseModel]]:
    """The name of the parameter taking the assignment (or ""), the `Path` parameters with their defaults
    (`...` when required), and the model of the other parameters."""
    hints = get_type_hints(function)
    fields: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    assignment_param = ""
    for name, param in inspect.signature(function).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"executor {executor_type!r}: parameter {name!r} must be a named parameter")
        hint = hints.get(name, Any)
        default = ... if param.default is param.empty else param.default
        if hint is TaskAssignment:
            assignment_param = name
        elif hint in (Path, Path | None):  # Optional[Path] compares equal to the second
            paths[name] = default
        else:
            fields[name] = (hint, default)
    model_name = "".join(part.capitalize() for part in executor_type.replace("-", "_").split("_")) + "Inputs"
    model = create_model(model_name, __config__=ConfigDict(extra="ignore"), **fields)
    return assignment_param, paths, model


def _paths(wanted: Mapping[str, Any], assignment: TaskAssignment) -> dict[str, Any]:
    """The `Path` arguments: the work directory, and each input artifact's local path (else its default)."""
    staged = {artifact.name.replace("-", "_"): artifact.path for artifact in assignment.artifacts if artifact.path}
    out: dict[str, Any] = {}
    for name, default in wanted.items():
        if name == WORKDIR:
            out[name] = Path(assignment.workdir)
        elif name in staged:
            out[name] = Path(staged[name])
        elif default is ...:
            raise TaskError(f'input artifact "{name}" is missing: the task must declare it in inputs.artifacts')
        else:
            out[name] = default
    return out


async def run(
    executors: Mapping[str, Executor] | None = None,
    *,
    nats: str | Client | NatsConnection,
    concurrency: int = 4,
    prefix: str = "aether",
    worker_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    drain_timeout: float = 30.0,
    task_ack_wait: float = DEFAULT_ACK_WAIT,
    registry_ttl: float = DEFAULT_TTL,
    replicas: int = 1,
    auth: NatsAuth | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[WorkerPool], Awaitable[None]] | None = None,
    state_dir: Path = DEFAULT_STATE_DIR,
) -> None:
    """Serve `executors` (default: every `@executor` registered so far) until cancelled, SIGTERM/SIGINT or `stop`.

    Then it drains: it stops fetching, unregisters, lets held tasks finish for up to `drain_timeout`
    seconds and hands the rest back to JetStream for another worker; every step is bounded, so it returns
    within about `drain_timeout + 2 * CLOSE_GRACE` seconds even with NATS gone. A second SIGTERM/SIGINT ends
    the process at once (unacked tasks are redelivered after their ack wait). `task_ack_wait` must be the one the
    engine's layout uses (whoever binds an executor consumer last sets it, logging the change), as must
    `replicas` should the worker be the first to create the tasks stream or the worker registry.

    Artifacts move through the system's object store bucket (created here if the worker comes first), files
    under `<state_dir>/artifacts` (the `local` repository) and HTTP; each attempt's work directory is in a temporary
    folder the worker removes when it stops.
    """
    chosen = dict(registered() if executors is None else executors)
    configure_tracing()
    if not chosen:
        raise ValueError("no executors to serve: register some with @executor or pass executors=")
    owned: NatsConnection | None = None
    if isinstance(nats, str):
        owned = await connect(nats, name="aether-es-worker", auth=auth)
        nc, js = owned.nc, owned.js
    elif isinstance(nats, NatsConnection):
        nc, js = nats.nc, nats.js
    else:
        nc, js = nats, nats.jetstream()
    layout = Layout(prefix=prefix, task_ack_wait=task_ack_wait, replicas=replicas)
    signals = StopSignals(stop).install()
    stopped = signals.requested
    channel = NatsWorkerChannel(js, nc, layout)
    work = work_root()
    try:
        # What a worker needs, should it start before the engine; the engine creates the rest.
        await ensure_stream(js, layout.tasks_stream_config())
        await ensure_bucket(js, layout.workers_kv_config())
        await ensure_object_store(js, layout.artifacts_object_store_config())
        pool = WorkerPool(
            channel,
            chosen,
            concurrency,
            worker_id,
            ack_wait=task_ack_wait,
            registry=NatsWorkerRegistry(js, layout, ttl=registry_ttl),
            tags=tags,
            artifacts=ArtifactStager(default_repositories(js, layout, state_dir), Path(work.name)),
            logs=NatsTaskLogs(nc, layout),
        )
        await pool.start()
        try:
            if on_started is not None:
                await on_started(pool)
            await stopped.wait()
        finally:
            await within("draining the worker", pool.stop(timeout=drain_timeout), drain_timeout + CLOSE_GRACE)
    finally:
        work.cleanup()
        signals.remove()
        await within("closing the executor consumers", channel.close(), CLOSE_GRACE)
        if owned is not None:
            await within("closing the NATS connection", owned.close(), CLOSE_GRACE)
