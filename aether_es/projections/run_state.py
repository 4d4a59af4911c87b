"""The fold of a run's events into its WorkflowRun and TaskRun views.

`apply` is the only place where events change state, used alike by live decisions, rehydration and replay,
which is why replayed views equal live ones. Besides Aether's records the state keeps small derived indexes
(each container's children, terminal counts, last child per name) so the decider never scans all of a
container's children.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from pydantic import TypeAdapter

from aether_es.events import catalogue as ev
from aether_es.events.envelope import Envelope
from aether_es.events.values import Metrics, ResultOutputs, Value
from aether_es.model import phases as ph
from aether_es.model.defaults import fill_defaults
from aether_es.model.documents import Artifact, Parameter, Workflow
from aether_es.model.loading import load_workflow
from aether_es.model.phases import TemplateType


class ProjectionError(Exception):
    """An event does not fit the state it is applied to: the history is not one this engine wrote."""


@dataclass(slots=True)
class Children:
    """The children of one container (or of the run's root), in creation order."""

    children: list[str] = field(default_factory=list)
    terminal: int = 0
    created: dict[str, None] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)

    @property
    def all_terminal(self) -> bool:
        """Aether's allTerminal: no children is never all terminal."""
        return bool(self.children) and self.terminal == len(self.children)

    @property
    def active(self) -> int:
        return len(self.children) - self.terminal


T = TypeVar("T")


class _Packed(Generic[T]):
    """A leaf view's value kept as its JSON in the slot `slot` and rebuilt on each read; a container's
    value is kept as the object, since containers are few and read often."""

    def __init__(self, slot: str, adapter: TypeAdapter[T], exclude_defaults: bool = False) -> None:
        self._slot = slot
        self._adapter = adapter
        self._to_json = adapter.serializer.to_json  # a third of `adapter.dump_json`'s cost, same bytes
        self._exclude_defaults = exclude_defaults

    def __get__(self, view: TaskRunView | None, owner: type | None = None) -> T | None:
        value = getattr(view, self._slot)
        return self._adapter.validate_json(value) if isinstance(value, bytes) else value

    def __set__(self, view: TaskRunView, value: T | None) -> None:
        if value is not None and view.template_type == TemplateType.TASK:
            packed = self._to_json(value, by_alias=True, exclude_none=True, exclude_defaults=self._exclude_defaults)
            setattr(view, self._slot, packed)
        else:
            setattr(view, self._slot, value)


@dataclass(slots=True)
class TaskRunView:
    """A task run's record. A leaf keeps its inputs, outputs and metrics as their JSON and rebuilds them on
    each read: pydantic objects cost ~600 bytes each, and a 100,000-iteration loop keeps every leaf in
    memory while the decider reads a leaf's values only a few times. Containers keep objects."""

    id: str
    workflow_run_id: str
    parent_id: str
    depth: int
    scope: str
    task_name: str
    template_name: str
    template_type: str
    created_at: str
    order: int
    phase: str = ph.CREATED
    message: str = ""
    packed_inputs: list[Parameter] | bytes | None = field(default=None, repr=False)
    input_artifacts: list[Artifact] | None = None
    packed_outputs: ResultOutputs | bytes | None = field(default=None, repr=False)
    packed_metrics: Metrics | bytes | None = field(default=None, repr=False)
    retry_count: int = 0
    deadline: str = ""
    updated_at: str = ""
    attempt: int = 0
    started_attempt: int = 0
    completed_attempt: int = 0
    executor_type: str = ""
    timeout: str = ""
    retry_at: str = ""
    """While a retry backoff runs: when the next attempt may be dispatched ("" otherwise)."""
    resumed_with: tuple[str, ...] | None = None
    """The payload keys of the resume that made the current attempt; None when a dispatch made it."""
    index: Children | None = field(default=None, repr=False, compare=False)

    inputs = _Packed[list[Parameter]]("packed_inputs", TypeAdapter(list[Parameter]), exclude_defaults=True)
    outputs = _Packed[ResultOutputs]("packed_outputs", TypeAdapter(ResultOutputs))
    metrics = _Packed[Metrics]("packed_metrics", TypeAdapter(Metrics))

    @property
    def kids(self) -> Children:
        """The index of its children, made on first use: most task runs are leaves and never need one."""
        if self.index is None:
            self.index = Children()
        return self.index

    def _inputs_view(self) -> dict[str, Any] | None:
        if self.packed_inputs is None and self.input_artifacts is None:
            return None
        view: dict[str, Any] = {"parameters": _json_view(self.packed_inputs) or []}
        if self.input_artifacts:
            view["artifacts"] = [a.dump() for a in self.input_artifacts]
        return view

    def to_dict(self) -> dict[str, Any]:
        """The public TaskExecution record (Aether's field names)."""
        record: dict[str, Any] = {
            "runID": self.id,
            "workflowRunID": self.workflow_run_id,
            "parentRunID": self.parent_id,
            "depth": self.depth,
            "scope": self.scope,
            "taskName": self.task_name,
            "templateName": self.template_name,
            "templateType": self.template_type,
            "createdAt": self.created_at,
            "status": self.phase,
            "message": self.message,
            "inputs": self._inputs_view(),
            "outputs": _json_view(self.packed_outputs),
            "metrics": _json_view(self.packed_metrics),
            "retryCount": self.retry_count,
        }
        if self.retry_at and self.phase == ph.CREATED:
            record["retryAt"] = self.retry_at  # the retry backoff extension: when the waiting retry starts
        return record


def _json_view(value: list[Parameter] | Value | bytes | None) -> Any:
    """A view value in its public JSON form: packed JSON as it is (it was dumped the same way), else dumped."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return orjson.loads(value)
    if isinstance(value, list):
        return [p.dump() for p in value]
    return value.dump()


@dataclass(slots=True)
class RunState:
    run_id: str
    document: dict[str, Any]
    created_at: str
    cron_id: str = ""
    phase: str = ph.CREATED
    message: str = ""
    outputs: ResultOutputs | None = None
    metrics: Metrics | None = None
    deadline: str = ""
    updated_at: str = ""
    tasks: dict[str, TaskRunView] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    root: Children = field(default_factory=Children)
    events: int = 0
    seq: int = 0
    suspended: int = 0
    """How many task runs are Suspended now (kept by `_set_phase`), so a run waiting to be resumed is found."""
    derived: object = field(default=None, repr=False, compare=False)
    """The decider's index of what it derives from the document and history (`engine.run_index.RunIndex`):
    not folded from events nor snapshotted, rebuilt on demand."""
    parsed: Workflow | None = field(default=None, repr=False, compare=False)

    @property
    def workflow(self) -> Workflow:
        """The document with Aether's defaults, parsed on first use: folding events never needs it, so a
        replay of many runs does not pay for parsing every document (the larger part of its cost)."""
        if self.parsed is None:
            self.parsed = fill_defaults(load_workflow(self.document))
        return self.parsed

    @property
    def terminal(self) -> bool:
        return self.phase in ph.TERMINAL

    def children_of(self, parent_id: str) -> Children:
        return self.tasks[parent_id].kids if parent_id else self.root

    def progress(self) -> str:
        """Aether's `<terminal>/<total>` over every task run, "" when there are none."""
        if not self.order:
            return ""
        done = sum(1 for tid in self.order if self.tasks[tid].phase in ph.TERMINAL)
        return f"{done}/{len(self.order)}"

    def to_dict(self) -> dict[str, Any]:
        """The public WorkflowExecution record (Aether's field names) with every task run."""
        return {**self.header(), "tasks": list(self.task_records())}

    def header(self) -> dict[str, Any]:
        """The WorkflowExecution record without its task runs, which a large run serves in pages."""
        return {
            "runID": self.run_id,
            "name": self.workflow.metadata.name,
            "namespace": self.workflow.metadata.namespace,
            "cronWorkflowID": self.cron_id,
            "status": self.phase,
            "message": self.message,
            "outputs": None if self.outputs is None else self.outputs.dump(),
            "metrics": None if self.metrics is None else self.metrics.dump(),
            "createdAt": self.created_at,
            "progress": self.progress(),
        }

    def task_records(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """The TaskExecution records from the `start`th on, in creation order, each built when reached: a page
        of a large run costs the page, not the run. Task runs are only ever appended to `order`, so an index
        keeps its place while the run moves; take the records before the next await, as a decision may change
        the state after it."""
        order, tasks = self.order, self.tasks
        return (tasks[order[index]].to_dict() for index in range(start, len(order)))


def start(envelope: Envelope) -> RunState:
    """The state a run's first event creates."""
    event = envelope.event
    if not isinstance(event, ev.RunSubmitted):
        raise ProjectionError(f"run {envelope.run_id} starts with {event.type}, not RunSubmitted")
    state = RunState(
        run_id=envelope.run_id,
        document=event.workflow,
        created_at=event.created_at,
        cron_id=event.cron_id,
        deadline=event.deadline,
        updated_at=envelope.time,
    )
    state.events = 1
    return state


def fold(envelopes: list[Envelope]) -> RunState:
    """Rebuild a run from its whole history."""
    state = start(envelopes[0])
    for env in envelopes[1:]:
        apply(state, env)
    return state


def apply(state: RunState, envelope: Envelope) -> None:
    """Fold one event into the state."""
    event = envelope.event
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise ProjectionError(f"event {event.type} cannot follow the start of run {state.run_id}")
    handler(state, event, envelope.time)
    state.events += 1
    state.updated_at = envelope.time


def _task(state: RunState, task_id: str) -> TaskRunView:
    try:
        return state.tasks[task_id]
    except KeyError:
        raise ProjectionError(f"run {state.run_id} has no task run {task_id}") from None


def _set_phase(state: RunState, task: TaskRunView, phase: str, time: str) -> None:
    """Change a task's phase and keep its siblings' terminal count and Created set in step."""
    old = task.phase
    task.phase = phase
    task.updated_at = time
    siblings = state.children_of(task.parent_id)
    was_terminal, is_terminal = old in ph.TERMINAL, phase in ph.TERMINAL
    if was_terminal != is_terminal:
        siblings.terminal += 1 if is_terminal else -1
    state.suspended += (phase == ph.SUSPENDED) - (old == ph.SUSPENDED)
    if phase == ph.CREATED:
        siblings.created[task.id] = None
    elif old == ph.CREATED:
        siblings.created.pop(task.id, None)


def _run_ready(state: RunState, event: ev.RunReady, time: str) -> None:
    state.phase = ph.READY


def _run_started(state: RunState, event: ev.RunStarted, time: str) -> None:
    state.phase = ph.RUNNING
    state.metrics = Metrics(started_at=event.started_at)


def _run_finished(state: RunState, event: ev.RunFinished, time: str) -> None:
    state.phase, state.message = event.phase, event.message
    state.outputs, state.metrics = event.outputs, event.metrics


def _run_stopped(state: RunState, event: ev.RunCancelled | ev.RunTimedOut | ev.RunErrored, time: str) -> None:
    state.phase = {
        "RunCancelled": ph.CANCELLED,
        "RunTimedOut": ph.TIMEOUT,
        "RunErrored": ph.ERROR,
    }[event.type]
    state.message = event.message
    started = state.metrics.started_at if state.metrics else None
    state.metrics = Metrics(started_at=started, finished_at=event.finished_at)


def _task_created(state: RunState, event: ev.TaskCreated, time: str) -> None:
    if event.task_id in state.tasks:
        raise ProjectionError(f"task run {event.task_id} created twice")
    task = TaskRunView(
        id=event.task_id,
        workflow_run_id=state.run_id,
        parent_id=event.parent_id,
        depth=event.depth,
        scope=event.scope,
        task_name=event.task_name,
        template_name=event.template_name,
        template_type=event.template_type,
        created_at=event.created_at,
        order=len(state.order),
        phase=event.phase,
        message=event.message,
        updated_at=time,
    )
    task.inputs = event.inputs
    siblings = state.children_of(event.parent_id)
    state.tasks[task.id] = task
    state.order.append(task.id)
    siblings.children.append(task.id)
    siblings.by_name[task.task_name] = task.id
    if task.phase in ph.TERMINAL:
        siblings.terminal += 1
    elif task.phase == ph.CREATED:
        siblings.created[task.id] = None


def _inputs_bound(state: RunState, event: ev.TaskInputsBound, time: str) -> None:
    _task(state, event.task_id).inputs = event.inputs


def _dispatched(state: RunState, event: ev.TaskDispatched, time: str) -> None:
    task = _task(state, event.task_id)
    if event.inputs is not None:
        task.inputs = event.inputs
    if event.artifacts is not None:
        task.input_artifacts = event.artifacts
    task.attempt = event.attempt
    task.resumed_with = None
    if task.retry_at:
        task.retry_at, task.message = "", ""  # the backoff's "retrying at" note is over
    task.executor_type = event.executor_type
    task.timeout = event.timeout
    task.deadline = event.deadline
    _set_phase(state, task, ph.READY, time)


def _ready(state: RunState, event: ev.TaskReady, time: str) -> None:
    task = _task(state, event.task_id)
    task.message = ""
    _set_phase(state, task, ph.READY, time)


def _started(state: RunState, event: ev.TaskStarted, time: str) -> None:
    task = _task(state, event.task_id)
    task.message = ""
    task.metrics = Metrics(started_at=event.started_at)
    task.started_attempt = max(task.started_attempt, event.attempt)
    _set_phase(state, task, ph.RUNNING, time)


def _start_recorded(state: RunState, event: ev.TaskStartRecorded, time: str) -> None:
    task = _task(state, event.task_id)
    task.started_attempt = max(task.started_attempt, event.attempt)


def _noted(state: RunState, event: ev.TaskNoted, time: str) -> None:
    _task(state, event.task_id).message = event.message


def _suspended(state: RunState, event: ev.TaskSuspended, time: str) -> None:
    task = _task(state, event.task_id)
    task.message = event.message
    task.outputs = event.outputs
    task.completed_attempt = event.attempt
    _set_phase(state, task, ph.SUSPENDED, time)


def _resumed(state: RunState, event: ev.TaskResumed, time: str) -> None:
    task = _task(state, event.task_id)
    task.inputs = event.inputs
    task.attempt = event.attempt
    task.resumed_with = tuple(event.payload_keys)
    task.updated_at = time


def _retried(state: RunState, event: ev.TaskRetried, time: str) -> None:
    task = _task(state, event.task_id)
    task.retry_count = event.retry_count
    task.completed_attempt = event.attempt
    task.retry_at = event.not_before
    task.message = (
        f"retrying at {event.not_before} (retry {event.retry_count} of {event.retry_limit})" if event.not_before else ""
    )
    _set_phase(state, task, ph.CREATED, time)


def _finished(state: RunState, event: ev.TaskFinished, time: str) -> None:
    task = _task(state, event.task_id)
    task.message = event.message
    task.outputs = event.outputs
    if event.metrics is not None:
        task.metrics = event.metrics
    if event.attempt:
        task.completed_attempt = event.attempt
    _set_phase(state, task, event.phase, time)


def _stopped(state: RunState, event: ev.TaskCancelled | ev.TaskTimedOut | ev.TaskErrored, time: str) -> None:
    task = _task(state, event.task_id)
    task.message = event.message
    phase = {"TaskCancelled": ph.CANCELLED, "TaskTimedOut": ph.TIMEOUT, "TaskErrored": ph.ERROR}[event.type]
    _set_phase(state, task, phase, time)


def _run_reopened(state: RunState, event: ev.RunReopened, time: str) -> None:
    state.phase, state.message, state.outputs = ph.RUNNING, "", None
    started = state.metrics.started_at if state.metrics else None
    state.metrics = Metrics(started_at=started)
    state.deadline = event.deadline


def _task_reset(state: RunState, event: ev.TaskReset, time: str) -> None:
    task = _task(state, event.task_id)
    task.message = ""
    task.outputs = None
    task.retry_count = event.retry_count
    task.deadline = ""
    if task.template_type == TemplateType.TASK:
        task.metrics = None
    _set_phase(state, task, event.phase, time)


def _task_superseded(state: RunState, event: ev.TaskSuperseded, time: str) -> None:
    task = _task(state, event.task_id)
    siblings = state.children_of(task.parent_id)
    siblings.children.remove(task.id)
    if task.phase in ph.TERMINAL:
        siblings.terminal -= 1
    siblings.created.pop(task.id, None)
    if siblings.by_name.get(task.task_name) == task.id:
        del siblings.by_name[task.task_name]
    task.message = "superseded by a retry"
    task.updated_at = time


_HANDLERS: dict[type, Any] = {
    ev.RunReopened: _run_reopened,
    ev.TaskSuperseded: _task_superseded,
    ev.TaskReset: _task_reset,
    ev.RunReady: _run_ready,
    ev.RunStarted: _run_started,
    ev.RunFinished: _run_finished,
    ev.RunCancelled: _run_stopped,
    ev.RunTimedOut: _run_stopped,
    ev.RunErrored: _run_stopped,
    ev.TaskCreated: _task_created,
    ev.TaskInputsBound: _inputs_bound,
    ev.TaskDispatched: _dispatched,
    ev.TaskReady: _ready,
    ev.TaskStarted: _started,
    ev.TaskStartRecorded: _start_recorded,
    ev.TaskNoted: _noted,
    ev.TaskSuspended: _suspended,
    ev.TaskResumed: _resumed,
    ev.TaskRetried: _retried,
    ev.TaskFinished: _finished,
    ev.TaskCancelled: _stopped,
    ev.TaskTimedOut: _stopped,
    ev.TaskErrored: _stopped,
}
