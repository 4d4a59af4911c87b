"""The decider: (run state, trigger) -> events and effects, with no I/O.

`handle` applies one trigger to a Decision; the runtime may handle several triggers of one run in the same
Decision and commit all their events as one message. Every handler is idempotent: a duplicated, late or
reordered report finds the state already past it and emits nothing.
"""

from __future__ import annotations

from aether_es.engine import assignments, hooks, leaves, run_retry, scheduler
from aether_es.engine.binding import merge_parameters
from aether_es.engine.decision import BudgetExhausted, Decision
from aether_es.engine.effects import CancelTasks, ClearDeadlines, DispatchTask, Effect, SetDeadline
from aether_es.engine.failures import deadline_keys, open_leaves, over_limit
from aether_es.engine.leaves import ToAdvance
from aether_es.engine.retries import retry_deadline
from aether_es.engine.triggers import (
    Cancel,
    Completed,
    Continue,
    NoWorker,
    Resume,
    RetryDue,
    RetryRun,
    Started,
    Submit,
    TaskTimeout,
    Trigger,
    WorkflowTimeout,
)
from aether_es.errors import AetherError, InvalidStateError, NotFoundError
from aether_es.events import catalogue as ev
from aether_es.limits import LimitExceeded
from aether_es.model import phases as ph
from aether_es.model.clock import parse_time
from aether_es.model.defaults import fill_defaults
from aether_es.model.documents import Parameter
from aether_es.model.gofmt import go_quote
from aether_es.model.loading import load_workflow
from aether_es.model.phases import ResultCode, TemplateType
from aether_es.model.validation import validate_workflow
from aether_es.ports.deadlines import Deadline, retry_key
from aether_es.ports.wire import TaskResult
from aether_es.projections.run_state import TaskRunView

TIMEOUT_MESSAGE = "task deadline exceeded (watchdog)"
CANCEL_MESSAGE = "cancelled by user"


def handle(decision: Decision, trigger: Trigger, run_id: str) -> AetherError | None:
    """Apply one trigger. Returns the error a caller should see (the decision stays usable)."""
    decision.begin(trigger, run_id)
    try:
        if isinstance(trigger, Submit):
            _submit(decision, trigger)
        elif not decision.has_state:
            return NotFoundError(f'workflow run "{run_id}" not found')
        elif isinstance(trigger, Started):
            _started(decision, trigger)
        elif isinstance(trigger, Completed):
            _completed(decision, trigger)
        elif isinstance(trigger, TaskTimeout):
            _task_timeout(decision, trigger)
        elif isinstance(trigger, RetryDue):
            _retry_due(decision, trigger)
        elif isinstance(trigger, NoWorker):
            _no_worker(decision, trigger)
        elif isinstance(trigger, WorkflowTimeout):
            _workflow_timeout(decision)
        elif isinstance(trigger, Resume):
            _resume(decision, trigger)
        elif isinstance(trigger, Cancel):
            _cancel(decision)
        elif isinstance(trigger, RetryRun):
            run_retry.retry_run(decision, trigger)
        elif isinstance(trigger, Continue):
            _continue(decision, trigger)
    except BudgetExhausted as exhausted:
        decision.resume_points.append(exhausted.container)
    except LimitExceeded as exc:
        over_limit(decision, exc)
    except AetherError as exc:
        return exc
    return None


def _submit(decision: Decision, trigger: Submit) -> None:
    if decision.has_state:
        return  # already submitted (an explicit run id submitted twice, or by another engine)
    workflow = trigger.workflow
    if workflow is None:
        workflow = fill_defaults(load_workflow(trigger.document))
        validate_workflow(workflow)
    deadline = decision.deadline_after(workflow.spec.timeout)
    decision.emit(
        ev.RunSubmitted(workflow=trigger.document, created_at=decision.now, deadline=deadline, cron_id=trigger.cron_id)
    )
    decision.state.parsed = workflow  # already loaded and defaulted: the state need not parse it again
    entry = workflow.spec.template(workflow.spec.entrypoint)
    assert entry is not None, "validation guarantees the entry template"
    decision.create_task(None, "", entry.name, entry.name, entry.type)
    if deadline:
        decision.effect(SetDeadline(Deadline(run_id=decision.state.run_id, at=deadline)))
    scheduler.advance(decision, "")


def _current(decision: Decision, task_id: str, attempt: int, reported: bool = True) -> TaskRunView | None:
    """The leaf a report is about, if it is for the leaf's current attempt and, for worker reports, that
    attempt's result is not yet recorded (a suspended attempt's result is, yet its deadline still runs)."""
    state = decision.state
    if state.terminal:
        return None
    task = state.tasks.get(task_id)
    if task is None or task.template_type != TemplateType.TASK or attempt != task.attempt:
        return None
    if reported and attempt <= task.completed_attempt:
        return None
    return task


def _started(decision: Decision, trigger: Started) -> None:
    task = _current(decision, trigger.task_id, trigger.attempt)
    if task is None or trigger.attempt <= task.started_attempt:
        return
    leaves.start_leaf(decision, task, trigger.at)


def _completed(decision: Decision, trigger: Completed) -> None:
    task = _current(decision, trigger.task_id, trigger.attempt)
    if task is not None:
        _advance(decision, leaves.complete_leaf(decision, task, trigger.result, trigger.at, trigger.started_at))


def _advance(decision: Decision, container: ToAdvance) -> None:
    if container is not None:
        scheduler.advance(decision, container)


def _retry_due(decision: Decision, trigger: RetryDue) -> None:
    """Dispatch a waiting retry once its time has come; a duplicate, stale or early report changes nothing."""
    task = _current(decision, trigger.task_id, trigger.attempt, reported=False)
    if task is None or task.phase != ph.CREATED or not task.retry_at:
        return
    if parse_time(decision.now) < parse_time(task.retry_at):
        return  # early: the watcher reports it again once it is due
    decision.effect(ClearDeadlines((retry_key(task.id, task.attempt),)))
    _advance(decision, leaves.dispatch_leaf(decision, task))


def _task_timeout(decision: Decision, trigger: TaskTimeout) -> None:
    """A passed task deadline ends the attempt as Timeout, even if no worker ever started it."""
    task = _current(decision, trigger.task_id, trigger.attempt, reported=False)
    if task is None or task.phase not in (ph.READY, ph.RUNNING, ph.SUSPENDED):
        return
    decision.effect(CancelTasks((task.id,)))
    _advance(
        decision,
        leaves.finish_leaf(decision, task, TaskResult(code=ResultCode.TIMEOUT, message=TIMEOUT_MESSAGE), trigger.at),
    )


def _no_worker(decision: Decision, trigger: NoWorker) -> None:
    task = _current(decision, trigger.task_id, trigger.attempt)
    message = f"waiting: no live worker serves executor type {go_quote(trigger.executor_type)}"
    if task is not None and task.phase == ph.READY and task.message != message:
        decision.emit(ev.TaskNoted(task_id=task.id, message=message))


def _workflow_timeout(decision: Decision) -> None:
    state = decision.state
    if state.terminal:
        return
    victims = [state.tasks[i] for i in state.order if state.tasks[i].phase not in ph.TERMINAL]
    open_ids = open_leaves(victims)
    for task in victims:
        decision.emit(ev.TaskTimedOut(task_id=task.id, message="workflow deadline exceeded (watchdog)"))
    decision.emit(ev.RunTimedOut(message="workflow deadline exceeded", finished_at=decision.now))
    if open_ids:
        decision.effect(CancelTasks(open_ids))
    decision.effect(ClearDeadlines(deadline_keys(state, victims)))
    hooks.workflow_hooks(decision, ph.TIMEOUT)


def _resume(decision: Decision, trigger: Resume) -> None:
    state = decision.state
    task = state.tasks.get(trigger.task_id)
    if task is None:
        raise InvalidStateError(f'task "{trigger.task_id}" does not belong to workflow "{state.run_id}"')
    if state.terminal:
        raise InvalidStateError(f'workflow "{state.run_id}" already in terminal state {state.phase}')
    if task.phase != ph.SUSPENDED:
        # Aether ignores it; refused here so the caller is not told a task resumed that never will.
        raise InvalidStateError(f'task "{task.id}" is {task.phase}, not Suspended: only a suspended task resumes')
    payload = [Parameter(name=key, value=value) for key, value in trigger.payload.items()]
    decision.emit(
        ev.TaskResumed(
            task_id=task.id,
            attempt=task.attempt + 1,
            inputs=merge_parameters(task.inputs, payload),
            payload_keys=list(trigger.payload),
        )
    )
    decision.effect(assignments.dispatch_effect(decision, task))
    if task.deadline:
        # The original deadline still applies; it now guards the resumed attempt.
        decision.effect(SetDeadline(leaves.timeout_deadline(task, task.deadline)))
    hooks.task_hooks(decision, task, key="onResume")


def _cancel(decision: Decision) -> None:
    state = decision.state
    if state.terminal:
        raise InvalidStateError(f'workflow "{state.run_id}" already in terminal state {state.phase}')
    victims = [state.tasks[i] for i in state.order if state.tasks[i].phase not in ph.TERMINAL]
    open_ids = open_leaves(victims)
    for task in victims:
        decision.emit(ev.TaskCancelled(task_id=task.id, message=CANCEL_MESSAGE))
    decision.emit(ev.RunCancelled(message=CANCEL_MESSAGE, finished_at=decision.now))
    if open_ids:
        decision.effect(CancelTasks(open_ids))
    decision.effect(ClearDeadlines(deadline_keys(state, victims)))
    for task in victims:
        hooks.task_hooks(decision, task, ph.CANCELLED)
    hooks.workflow_hooks(decision, ph.CANCELLED)


def _continue(decision: Decision, trigger: Continue) -> None:
    """Advance the containers a budget-limited decision left (and their ancestors), or every open container."""
    state = decision.state
    if trigger.containers is None:
        containers = [i for i in reversed(state.order) if state.tasks[i].template_type != TemplateType.TASK] + [""]
    else:
        containers = []
        for container in trigger.containers:
            while container:
                containers.append(container)
                container = state.tasks[container].parent_id if container in state.tasks else ""
            containers.append("")
    seen: set[str] = set()
    for container in containers:
        if container in seen or state.terminal:
            continue
        seen.add(container)
        if container and state.tasks[container].phase in ph.TERMINAL:
            continue
        scheduler.advance(decision, container)


def pending_effects(decision: Decision) -> list[Effect]:
    """What a rehydrated run still needs from the outside world: assignments in flight and deadlines."""
    state = decision.state
    effects: list[Effect] = []
    if state.terminal:
        return effects
    if state.deadline:
        effects.append(SetDeadline(Deadline(run_id=state.run_id, at=state.deadline)))
    for task_id in state.order:
        task = state.tasks[task_id]
        if task.template_type != TemplateType.TASK or task.phase in ph.TERMINAL:
            continue
        if task.phase == ph.CREATED and task.retry_at:
            effects.append(SetDeadline(retry_deadline(task)))  # a retry already due is reported at once
            continue
        awaiting = task.phase == ph.READY or (task.phase == ph.SUSPENDED and task.attempt > task.completed_attempt)
        if awaiting:
            dispatch: DispatchTask = assignments.dispatch_effect(decision, task)
            effects.append(dispatch)
        if task.deadline and task.phase in (ph.READY, ph.RUNNING, ph.SUSPENDED):
            effects.append(SetDeadline(leaves.timeout_deadline(task, task.deadline)))
    return effects
