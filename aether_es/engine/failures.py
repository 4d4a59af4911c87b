"""How a run stops short: a task that cannot run, an engine error, a limit passed; and what a stopped run
leaves to clean up (the leaves to cancel, the deadlines to clear)."""

from __future__ import annotations

from collections.abc import Iterable

from aether_es.engine.decision import Decision
from aether_es.engine.effects import CancelTasks, ClearDeadlines
from aether_es.events import catalogue as ev
from aether_es.limits import LimitExceeded
from aether_es.model import phases as ph
from aether_es.model.phases import TemplateType
from aether_es.ports.deadlines import retry_key, run_key, task_key
from aether_es.ports.error_sink import Severity
from aether_es.projections.run_state import RunState, TaskRunView


def over_limit(decision: Decision, exc: LimitExceeded) -> None:
    """The run grew past one of the engine's limits: it ends as an Error saying which, and what it holds
    running is cancelled (the limit would be hit again by the same document)."""
    state = decision.state
    if state.terminal:
        return
    message = f"workflow run stopped: {exc}"
    decision.report("limits", message, Severity.ERROR)
    open_tasks = [state.tasks[i] for i in state.order if state.tasks[i].phase not in ph.TERMINAL]
    decision.emit(ev.RunErrored(message=message, finished_at=decision.now))
    leaves = open_leaves(open_tasks)
    if leaves:
        decision.effect(CancelTasks(leaves))
    decision.effect(ClearDeadlines(deadline_keys(state, open_tasks)))


def open_leaves(victims: list[TaskRunView]) -> tuple[str, ...]:
    """The leaves among `victims` a worker may hold (dispatched, running or suspended): those to cancel."""
    return tuple(
        t.id
        for t in victims
        if t.template_type == TemplateType.TASK and t.phase in (ph.READY, ph.RUNNING, ph.SUSPENDED)
    )


def fail_run(decision: Decision, task: TaskRunView, cause: str) -> None:
    """A task that cannot run stops the run with an engine error (Aether's tryMarkWorkflowError)."""
    decision.report("dispatchLeafTask", cause, Severity.CRITICAL, task.id)
    if task.phase not in ph.TERMINAL:
        decision.emit(ev.TaskErrored(task_id=task.id, message=cause))
    mark_run_error(decision, cause)


def mark_run_error(decision: Decision, cause: str) -> None:
    if decision.state.terminal:
        return
    decision.report("tryMarkWorkflowError", cause, Severity.CRITICAL)
    decision.emit(ev.RunErrored(message=f"engine internal error: {cause}", finished_at=decision.now))
    decision.effect(ClearDeadlines(deadline_keys(decision.state, decision.state.tasks.values())))


def deadline_keys(state: RunState, tasks: Iterable[TaskRunView]) -> tuple[str, ...]:
    """The deadline keys of these tasks (those that have one, retry backoffs included) and of the run."""
    keys: list[str] = []
    for task in tasks:
        if task.deadline:
            keys.append(task_key(task.id))
        if task.retry_at:
            keys.append(retry_key(task.id, task.attempt))
    if state.deadline:
        keys.append(run_key(state.run_id))
    return tuple(keys)
